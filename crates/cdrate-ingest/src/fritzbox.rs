//! Fritz!Box CallMonitor (being written).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::Outcome;

/// One box's CallMonitor state: the calls open on each connection id.
pub struct CallMonitor {
    box_id: String,
    timezone: Tz,
}

impl CallMonitor {
    pub fn new(box_id: impl Into<String>, timezone: Tz) -> CallMonitor {
        CallMonitor {
            box_id: box_id.into(),
            timezone,
        }
    }

    /// Feeds one line the box sent; returns the outcome it completes, if any.
    pub fn feed(&mut self, _line: &str, _received_at: DateTime<Utc>) -> Option<Outcome> {
        let _ = (&self.box_id, self.timezone);
        None
    }
}
