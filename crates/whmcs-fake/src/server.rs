//! The accept loop and the routes: `POST /includes/api.php` (access
//! checks, dispatch, the envelope, quirks and faults) and the fake-only
//! inspection routes under `/_fake/` (API.md §7.11). Everything a request
//! changes is decided under the state lock in plain functions; waiting and
//! socket I/O happen after the lock is released.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::actions::{self, Ctx, SECRET_PARAMS};
use crate::config::FakeConfig;
use crate::faults::{Fault, FaultKind, Faults};
use crate::form::{Form, PhpArray};
use crate::http::{self, Limits, Request, Response};
use crate::state::{Seed, State};
use crate::REDACTED;

const MAX_HEAD_BYTES: usize = 64 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A request to the API as the fake received it, credentials redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Received {
    /// 1, 2, … in arrival order (restarting when the log is cleared).
    pub seq: u64,
    pub remote: String,
    pub method: String,
    pub path: String,
    /// `action` as sent (empty when missing).
    pub action: String,
    pub params: BTreeMap<String, String>,
    pub arrays: BTreeMap<String, PhpArray>,
    /// The HTTP status answered; `None` when the connection was dropped.
    pub status: Option<u16>,
    /// The error `message` answered, if any.
    pub error: Option<String>,
    pub fault: Option<FaultKind>,
}

/// Everything behind the lock.
pub(crate) struct Shared {
    pub config: FakeConfig,
    pub state: State,
    pub requests: Vec<Received>,
    pub faults: Faults,
}

pub(crate) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic elsewhere must not take the fake down with it.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// "Today": the configured date, else the current UTC date.
    pub fn today(&self) -> NaiveDate {
        self.config
            .behaviour
            .today
            .as_deref()
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .unwrap_or_else(|| chrono::Utc::now().date_naive())
    }

    pub fn reset(&mut self) {
        self.state = State::new();
        self.requests.clear();
        self.faults.clear();
    }

    pub fn seed(&mut self, seed: Seed) {
        let today = self.today();
        self.state.seed(seed, today);
    }
}

pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Mutex<Shared>>, stop: Arc<Notify>) {
    loop {
        tokio::select! {
            _ = stop.notified() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    tokio::spawn(serve(stream, remote, shared.clone()));
                }
                Err(e) => {
                    // Out of descriptors and the like: back off, keep serving.
                    tracing::warn!("whmcs-fake: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// What to do with the connection once the lock is released.
enum Reply {
    Answer(Response),
    /// Close without answering.
    Drop,
}

async fn serve(mut stream: TcpStream, remote: SocketAddr, shared: Arc<Mutex<Shared>>) {
    let limits = Limits {
        max_head_bytes: MAX_HEAD_BYTES,
        max_body_bytes: lock(&shared).config.max_body_bytes,
        read_timeout: READ_TIMEOUT,
    };
    let request = match http::read_request(&mut stream, limits).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!("whmcs-fake: bad request from {remote}: {e}");
            if let Some(status) = e.status() {
                let _ = http::write_response(&mut stream, &Response::status_page(status)).await;
                linger(&mut stream).await;
            }
            return;
        }
    };
    let (reply, delay) = route(&shared, &request, remote.ip());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match reply {
        Reply::Answer(response) => {
            if let Err(e) = http::write_response(&mut stream, &response).await {
                tracing::debug!("whmcs-fake: answering {remote}: {e}");
            }
        }
        // The request was read in full, so closing sends a clean FIN: the
        // client sees the connection end without a byte of answer.
        Reply::Drop => drop(stream),
    }
}

/// Reads and discards what the client is still sending (a refused body)
/// for a moment: closing with unread input would reset the connection and
/// could destroy the refusal before the client reads it.
async fn linger(stream: &mut TcpStream) {
    let mut sink = [0u8; 8192];
    let mut left: usize = 1 << 20;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

fn route(shared: &Mutex<Shared>, req: &Request, ip: IpAddr) -> (Reply, Duration) {
    let mut s = lock(shared);
    let now = |r: Response| (Reply::Answer(r), Duration::ZERO);
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/includes/api.php") => api(&mut s, req, ip),
        ("GET", "/_fake/state") => now(Response::json(200, &s.state.dump())),
        ("POST", "/_fake/reset") => {
            s.reset();
            now(ok())
        }
        ("POST", "/_fake/seed") => match serde_json::from_slice::<Seed>(&req.body) {
            Ok(seed) => {
                s.seed(seed);
                now(ok())
            }
            Err(e) => now(bad_request(&e)),
        },
        ("GET", "/_fake/requests") => now(Response::json(200, &to_json(&s.requests))),
        ("DELETE", "/_fake/requests") => {
            s.requests.clear();
            now(ok())
        }
        ("GET", "/_fake/faults") => now(Response::json(200, &to_json(&s.faults.pending()))),
        ("POST", "/_fake/faults") => match serde_json::from_slice::<OneOrMany>(&req.body) {
            Ok(OneOrMany::One(f)) => {
                s.faults.add(f);
                now(ok())
            }
            Ok(OneOrMany::Many(list)) => {
                list.into_iter().for_each(|f| s.faults.add(f));
                now(ok())
            }
            Err(e) => now(bad_request(&e)),
        },
        ("DELETE", "/_fake/faults") => {
            s.faults.clear();
            now(ok())
        }
        _ => now(Response::status_page(404)),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Fault),
    Many(Vec<Fault>),
}

fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn ok() -> Response {
    Response::json(200, &json!({ "ok": true }))
}

fn bad_request(e: &serde_json::Error) -> Response {
    Response::json(400, &json!({ "ok": false, "error": e.to_string() }))
}

fn error(message: &str) -> Value {
    json!({ "result": "error", "message": message })
}

/// PHP fills `$_POST` only from a form-encoded (or multipart) body: a body
/// of any other type reaches WHMCS as no parameters at all.
fn form_of(req: &Request) -> Result<Form, Response> {
    let mime = req
        .header("content-type")
        .and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match mime.as_str() {
        "application/x-www-form-urlencoded" => Ok(Form::parse(&req.body)),
        // A limit of the fake, not WHMCS behaviour: say so loudly.
        "multipart/form-data" => Err(Response::json(
            415,
            &error("whmcs-fake: multipart/form-data bodies are not supported; send application/x-www-form-urlencoded"),
        )),
        _ => Ok(Form::default()),
    }
}

fn api(s: &mut Shared, req: &Request, ip: IpAddr) -> (Reply, Duration) {
    let form = match form_of(req) {
        Ok(f) => f,
        Err(response) => return (Reply::Answer(response), Duration::ZERO),
    };
    let action = form.raw("action").unwrap_or_default().to_owned();
    let fault = s.faults.take(&action);
    let kind = fault.as_ref().map(|f| f.fault);
    let delay = Duration::from_millis(fault.as_ref().map_or(0, |f| f.delay_ms));
    let (reply, error) = match kind {
        Some(FaultKind::Http500) => (
            Reply::Answer(Response::status_page(500)),
            Some("HTTP 500 (fault)".to_owned()),
        ),
        Some(FaultKind::ForbiddenJson) => {
            let message = format!("Invalid IP {}", ip.to_canonical());
            (Reply::Answer(Response::json(403, &error(&message))), Some(message))
        }
        _ => {
            let (status, body) = call(s, &form, ip, &action);
            let error = body.get("message").and_then(Value::as_str).map(str::to_owned);
            let reply = match kind {
                Some(FaultKind::DropAfterCommit) => Reply::Drop,
                Some(FaultKind::HtmlBody) => Reply::Answer(Response::html(
                    200,
                    "Oops! Something went wrong and this page could not be displayed",
                )),
                Some(FaultKind::TruncatedBody) => {
                    let mut response = Response::json(status, &body);
                    response.body.truncate(response.body.len() / 2);
                    Reply::Answer(response)
                }
                _ => Reply::Answer(Response::json(status, &body)),
            };
            (reply, error)
        }
    };
    let seq = s.requests.len() as u64 + 1;
    s.requests.push(Received {
        seq,
        remote: ip.to_canonical().to_string(),
        method: req.method.clone(),
        path: req.path.clone(),
        action,
        params: redacted_scalars(&form),
        arrays: redacted_arrays(&form),
        status: match &reply {
            Reply::Answer(r) => Some(r.status),
            Reply::Drop => None,
        },
        error,
        fault: kind,
    });
    (reply, delay)
}

fn is_secret(key: &str) -> bool {
    SECRET_PARAMS.iter().any(|s| key.eq_ignore_ascii_case(s))
}

fn redacted_scalars(form: &Form) -> BTreeMap<String, String> {
    form.scalars
        .iter()
        .map(|(k, v)| {
            let v = if is_secret(k) { REDACTED.to_owned() } else { v.clone() };
            (k.clone(), v)
        })
        .collect()
}

fn redacted_arrays(form: &Form) -> BTreeMap<String, PhpArray> {
    form.arrays
        .iter()
        .filter(|(k, _)| !is_secret(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// One API call past the faults: `(HTTP status, JSON answer)`.
fn call(s: &mut Shared, form: &Form, ip: IpAddr, action: &str) -> (u16, Value) {
    let json_ok = match form.get("responsetype") {
        None => s.config.omitted_responsetype_is_json,
        Some(t) => t.eq_ignore_ascii_case("json"),
    };
    // Checked first: the fake cannot answer in any other format at all.
    if !json_ok {
        return (200, error("Unsupported response type"));
    }
    // Roles are checked before the action is looked up, so a restricted
    // credential gets `Invalid Permissions` for an unknown action too. [unconfirmed]
    if let Err(denied) = crate::auth::authorize(&s.config, form, ip, action) {
        return (denied.status, error(&denied.message));
    }
    let today = s.today();
    let ctx = Ctx {
        behaviour: &s.config.behaviour,
        quirks: &s.config.quirks,
        today,
    };
    let (outcome, fields) = match actions::dispatch(&mut s.state, action, form, &ctx) {
        None => (
            "error",
            Map::from_iter([("message".to_owned(), json!("Command Not Found"))]),
        ),
        Some(Err(message)) => ("error", Map::from_iter([("message".to_owned(), json!(message))])),
        Some(Ok(fields)) => ("success", fields),
    };
    // The docs' AddBillableItem example reports the outcome as `status`.
    let key = if s.config.quirks.add_billable_item_status_key && action.eq_ignore_ascii_case("addbillableitem") {
        "status"
    } else {
        "result"
    };
    let mut body = Map::new();
    body.insert(key.to_owned(), json!(outcome));
    body.extend(fields);
    let mut body = Value::Object(body);
    if s.config.quirks.all_numbers_as_strings {
        stringify_numbers(&mut body);
    }
    (200, body)
}

/// Every JSON number to a string, as WHMCS's flattened examples show them.
fn stringify_numbers(v: &mut Value) {
    match v {
        Value::Number(n) => *v = Value::String(n.to_string()),
        Value::Array(items) => items.iter_mut().for_each(stringify_numbers),
        Value::Object(map) => map.values_mut().for_each(stringify_numbers),
        _ => {}
    }
}
