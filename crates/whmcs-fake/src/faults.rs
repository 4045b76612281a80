//! Scripted failures for cdrate's idempotency tests (API.md §7.10): each
//! [`Fault`] applies to the next `times` API requests whose action matches,
//! in the order the faults were added. Some faults stop the request before
//! it does anything; the others let the write commit and spoil only the
//! answer, which is the ambiguous outcome cdrate must reconcile.

use serde::{Deserialize, Serialize};

/// A fault for the next `times` requests for `action`.
///
/// JSON (`POST /_fake/faults`, one object or a list):
/// `{"action": "AddBillableItem", "fault": "drop_after_commit", "times": 1, "delay_ms": 0}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The action, matched ignoring case; `*` = any request to the API.
    pub action: String,
    pub fault: FaultKind,
    /// How many matching requests it applies to; 0 = every one until the
    /// faults are cleared.
    #[serde(default = "one")]
    pub times: u32,
    /// The wait for `delay_ms`; with another kind, a wait before it acts.
    #[serde(default)]
    pub delay_ms: u64,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Does the action, then waits `delay_ms` before answering normally:
    /// a client with a shorter timeout sees a timeout after the commit.
    DelayMs,
    /// HTTP 500 with an HTML page; nothing is done.
    #[serde(rename = "http_500")]
    Http500,
    /// Does the action, then closes the connection without a byte of answer.
    DropAfterCommit,
    /// Does the action, then answers 200 with an HTML page (a PHP notice or
    /// a proxy page instead of JSON).
    HtmlBody,
    /// Does the action, then answers 200 with the first half of the JSON
    /// (with a matching `Content-Length`, so only the JSON is broken).
    TruncatedBody,
    /// HTTP 403 with a JSON error (`Invalid IP <ip>`); nothing is done.
    ForbiddenJson,
}

impl FaultKind {
    /// Whether the request is carried out before the fault spoils the answer.
    pub fn commits(self) -> bool {
        !matches!(self, FaultKind::Http500 | FaultKind::ForbiddenJson)
    }
}

/// The pending faults.
#[derive(Debug, Default, Clone)]
pub(crate) struct Faults {
    pending: Vec<Fault>,
}

impl Faults {
    pub fn add(&mut self, fault: Fault) {
        self.pending.push(fault);
    }

    pub fn clear(&mut self) {
        self.pending.clear();
    }

    pub fn pending(&self) -> Vec<Fault> {
        self.pending.clone()
    }

    /// The first fault matching `action`, counted down (and dropped when
    /// used up).
    pub fn take(&mut self, action: &str) -> Option<Fault> {
        let i = self
            .pending
            .iter()
            .position(|f| f.action == "*" || f.action.eq_ignore_ascii_case(action))?;
        let fault = self.pending[i].clone();
        match self.pending[i].times {
            0 => {}
            1 => {
                self.pending.remove(i);
            }
            _ => self.pending[i].times -= 1,
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_count_down_in_order() {
        let mut faults = Faults::default();
        let fault: Fault =
            serde_json::from_str(r#"{"action":"AddBillableItem","fault":"http_500","times":2}"#).unwrap();
        faults.add(fault);
        faults.add(Fault {
            action: "*".into(),
            fault: FaultKind::DropAfterCommit,
            times: 0,
            delay_ms: 0,
        });
        let kind = |f: Option<Fault>| f.map(|f| f.fault);
        assert_eq!(kind(faults.take("addbillableitem")), Some(FaultKind::Http500));
        assert_eq!(kind(faults.take("GetInvoice")), Some(FaultKind::DropAfterCommit));
        assert_eq!(kind(faults.take("ADDBILLABLEITEM")), Some(FaultKind::Http500));
        assert_eq!(kind(faults.take("addbillableitem")), Some(FaultKind::DropAfterCommit));
        assert_eq!(faults.pending().len(), 1, "times 0 stays until cleared");
        assert!(serde_json::from_str::<Fault>(r#"{"action":"x","fault":"explode"}"#).is_err());
    }
}
