//! A contract fake of the WHMCS External API (`includes/api.php`) for
//! cdrate's tests, following `../shared/whmcs/API.md` §7: form POSTs with
//! PHP bracket keys, `identifier`/`secret` (or the legacy
//! `username`/`password`, or an admin login with an MD5 password), an
//! optional IP allowlist with access key, per-credential roles, the
//! documented envelope and error strings, in-memory state ([`state`]),
//! documented quirks, fault injection, and inspection under `/_fake/`.
//!
//! HTTP/1.1 is spoken by hand over tokio's `TcpListener`, one request per
//! connection: the fault "drop the connection after committing the write"
//! needs the socket itself.
//!
//! Inspection routes: `GET /_fake/state`, `POST /_fake/reset`,
//! `POST /_fake/seed` ([`state::Seed`] JSON), `GET /_fake/requests`
//! (credentials redacted), `POST /_fake/faults` ([`Fault`] JSON).

// The GetClientsProducts and GetInvoices answers are large json! literals.
#![recursion_limit = "256"]

pub mod form;
pub mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use form::Form;
use state::{Seed, State};

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 8 * 1024 * 1024;

/// An API credential and the actions its roles allow (`None` = all).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credential {
    pub identifier: String,
    pub secret: String,
    #[serde(default)]
    pub allowed_actions: Option<BTreeSet<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct FakeConfig {
    pub listen: SocketAddr,
    pub credentials: Vec<Credential>,
    /// Admin logins `(username, password)`: the legacy `password` field
    /// carries the MD5 hex of the password.
    pub admins: Vec<(String, String)>,
    /// Allowed caller IPs; `None` = no IP restriction (the default).
    pub allowed_ips: Option<Vec<String>>,
    /// `$api_access_key`: bypasses the IP check.
    pub access_key: Option<String>,
    /// Check the IP before the credentials (the order is [unconfirmed]).
    pub ip_check_first: bool,
    /// HTTP status of a bad-credential answer ([unconfirmed]; 403).
    pub auth_failure_status: u16,
    /// HTTP status of a disallowed-IP answer (403, user-reported).
    pub ip_failure_status: u16,
    /// Answer AddBillableItem with `status` instead of `result`, as the
    /// docs' example does.
    pub quirk_status_instead_of_result: bool,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            credentials: vec![Credential {
                identifier: "cdrate-test-identifier".into(),
                secret: "cdrate-test-secret".into(),
                allowed_actions: None,
            }],
            admins: Vec::new(),
            allowed_ips: None,
            access_key: None,
            ip_check_first: true,
            auth_failure_status: 403,
            ip_failure_status: 403,
            quirk_status_instead_of_result: false,
        }
    }
}

/// A fault applied to the next `times` requests for `action` (`*` = any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub action: String,
    pub fault: FaultKind,
    #[serde(default = "one")]
    pub times: u32,
    /// For `delay_ms`.
    #[serde(default)]
    pub delay_ms: u64,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Wait `delay_ms`, then answer normally.
    DelayMs,
    /// HTTP 500 with an HTML page; nothing is done.
    #[serde(rename = "http_500")]
    Http500,
    /// Do the action, then close the connection without answering.
    DropAfterCommit,
    /// Do the action, then answer 200 with an HTML page.
    HtmlBody,
    /// Do the action, then answer with the JSON cut in half.
    TruncatedBody,
    /// HTTP 403 with a JSON error; nothing is done.
    ForbiddenJson,
}

/// A request the fake received, credentials redacted.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub remote: String,
    pub path: String,
    pub action: String,
    pub params: BTreeMap<String, String>,
    pub arrays: BTreeMap<String, Vec<(String, String)>>,
}

struct Shared {
    config: FakeConfig,
    state: State,
    requests: Vec<Received>,
    faults: Vec<Fault>,
}

/// A running fake. Dropping it does not stop it; call [`FakeHandle::shutdown`].
#[derive(Clone)]
pub struct FakeHandle {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<tokio::sync::Notify>,
}

#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    #[error("binding {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

/// Binds and serves in a tokio task.
pub async fn start(config: FakeConfig) -> Result<FakeHandle, FakeError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| FakeError::Bind(config.listen, e))?;
    let addr = listener.local_addr().map_err(|e| FakeError::Bind(config.listen, e))?;
    let shared = Arc::new(Mutex::new(Shared {
        config,
        state: State::new(),
        requests: Vec::new(),
        faults: Vec::new(),
    }));
    let stop = Arc::new(tokio::sync::Notify::new());
    let handle = FakeHandle {
        addr,
        shared: shared.clone(),
        stop: stop.clone(),
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.notified() => return,
                accepted = listener.accept() => {
                    if let Ok((stream, remote)) = accepted {
                        let shared = shared.clone();
                        tokio::spawn(async move { let _ = serve(stream, remote, shared).await; });
                    }
                }
            }
        }
    });
    Ok(handle)
}

impl FakeHandle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn seed(&self, seed: Seed) {
        self.lock().state.seed(seed);
    }

    pub fn add_fault(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// The whole state as JSON (what `GET /_fake/state` returns).
    pub fn snapshot(&self) -> Value {
        serde_json::to_value(&self.lock().state).unwrap_or(Value::Null)
    }

    pub fn billable_items(&self) -> Vec<state::BillableItem> {
        self.lock().state.billable_items.values().cloned().collect()
    }

    pub fn invoices(&self) -> Vec<state::Invoice> {
        self.lock().state.invoices.values().cloned().collect()
    }

    pub fn requests(&self) -> Vec<Received> {
        self.lock().requests.clone()
    }

    pub fn module_calls(&self) -> Vec<state::ModuleCall> {
        self.lock().state.module_calls.clone()
    }

    pub fn reset(&self) {
        let mut s = self.lock();
        s.state = State::new();
        s.requests.clear();
        s.faults.clear();
    }

    pub fn shutdown(&self) {
        self.stop.notify_one();
    }
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_owned(), first.next()?.to_owned());
    let mut length = 0usize;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            }
        }
    }
    if length > MAX_BODY {
        return None;
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    let path = target.split('?').next().unwrap_or("").to_owned();
    Some(Request { method, path, body })
}

async fn respond(stream: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let _ = stream.shutdown().await;
}

async fn respond_json(stream: &mut TcpStream, status: u16, v: &Value) {
    respond(stream, status, "application/json", v.to_string().as_bytes()).await;
}

async fn serve(mut stream: TcpStream, remote: SocketAddr, shared: Arc<Mutex<Shared>>) -> Option<()> {
    let req = read_request(&mut stream).await?;
    let lock = || shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/includes/api.php") => {}
        ("GET", "/_fake/state") => {
            let v = serde_json::to_value(&lock().state).unwrap_or(Value::Null);
            respond_json(&mut stream, 200, &v).await;
            return Some(());
        }
        ("GET", "/_fake/requests") => {
            let v = serde_json::to_value(&lock().requests).unwrap_or(Value::Null);
            respond_json(&mut stream, 200, &v).await;
            return Some(());
        }
        ("POST", "/_fake/reset") => {
            {
                let mut s = lock();
                s.state = State::new();
                s.requests.clear();
                s.faults.clear();
            }
            respond_json(&mut stream, 200, &json!({"ok": true})).await;
            return Some(());
        }
        ("POST", "/_fake/seed") => {
            match serde_json::from_slice::<Seed>(&req.body) {
                Ok(seed) => {
                    lock().state.seed(seed);
                    respond_json(&mut stream, 200, &json!({"ok": true})).await;
                }
                Err(e) => respond_json(&mut stream, 400, &json!({"error": e.to_string()})).await,
            }
            return Some(());
        }
        ("POST", "/_fake/faults") => {
            match serde_json::from_slice::<Fault>(&req.body) {
                Ok(f) => {
                    lock().faults.push(f);
                    respond_json(&mut stream, 200, &json!({"ok": true})).await;
                }
                Err(e) => respond_json(&mut stream, 400, &json!({"error": e.to_string()})).await,
            }
            return Some(());
        }
        _ => {
            respond(
                &mut stream,
                404,
                "text/html",
                b"<html><body>404 Not Found</body></html>",
            )
            .await;
            return Some(());
        }
    }

    let form = Form::parse(&req.body);
    let action = form.get("action").unwrap_or("").to_ascii_lowercase();
    let ip = remote.ip().to_string();
    // Decide everything under the lock (in a plain function, so no guard
    // lives across an await), then do the I/O without it.
    let (status, answer, fault) = decide(&shared, &form, &action, &ip, &req.path);
    match fault.as_ref().map(|f| f.fault) {
        Some(FaultKind::Http500) => {
            respond(
                &mut stream,
                500,
                "text/html",
                b"<html><body>500 Internal Server Error</body></html>",
            )
            .await;
            return Some(());
        }
        Some(FaultKind::ForbiddenJson) => {
            respond_json(&mut stream, 403, &error(format!("Invalid IP {ip}"))).await;
            return Some(());
        }
        _ => {}
    }
    match fault.map(|f| (f.fault, f.delay_ms)) {
        Some((FaultKind::DelayMs, ms)) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            respond_json(&mut stream, status, &answer).await;
        }
        Some((FaultKind::DropAfterCommit, _)) => {
            // The write is done; the caller never hears about it.
            let _ = stream.shutdown().await;
        }
        Some((FaultKind::HtmlBody, _)) => {
            respond(
                &mut stream,
                200,
                "text/html",
                b"<html><body>Oops! Something went wrong.</body></html>",
            )
            .await;
        }
        Some((FaultKind::TruncatedBody, _)) => {
            let text = answer.to_string();
            let half = &text.as_bytes()[..text.len() / 2];
            respond(&mut stream, status, "application/json", half).await;
        }
        _ => respond_json(&mut stream, status, &answer).await,
    }
    Some(())
}

/// Records the request, takes a matching fault, and (unless the fault
/// forbids it) runs the call: `(status, body, fault)`.
fn decide(shared: &Mutex<Shared>, form: &Form, action: &str, ip: &str, path: &str) -> (u16, Value, Option<Fault>) {
    let mut s = shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut params = form.scalars.clone();
    for k in ["secret", "password", "accesskey"] {
        if let Some(v) = params.get_mut(k) {
            *v = "***".into();
        }
    }
    s.requests.push(Received {
        remote: ip.to_owned(),
        path: path.to_owned(),
        action: action.to_owned(),
        params,
        arrays: form.arrays.clone(),
    });
    let fault = take_fault(&mut s.faults, action);
    if fault
        .as_ref()
        .is_some_and(|f| matches!(f.fault, FaultKind::Http500 | FaultKind::ForbiddenJson))
    {
        return (0, Value::Null, fault);
    }
    let (status, answer) = handle_api(&mut s, form, action, ip);
    (status, answer, fault)
}

fn take_fault(faults: &mut Vec<Fault>, action: &str) -> Option<Fault> {
    let i = faults
        .iter()
        .position(|f| f.times > 0 && (f.action == "*" || f.action.eq_ignore_ascii_case(action)))?;
    let fault = faults[i].clone();
    faults[i].times -= 1;
    if faults[i].times == 0 {
        faults.remove(i);
    }
    Some(fault)
}

fn error(message: impl Into<String>) -> Value {
    json!({"result": "error", "message": message.into()})
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Authentication, roles and dispatch of one API call: `(status, body)`.
fn handle_api(s: &mut Shared, f: &Form, action: &str, ip: &str) -> (u16, Value) {
    let c = &s.config;
    let ip_ok = || {
        c.allowed_ips.as_ref().is_none_or(|ips| ips.iter().any(|a| a == ip))
            || c.access_key.as_deref().is_some_and(|k| f.get("accesskey") == Some(k))
    };
    let credential = {
        let (id, secret) = match (f.get("identifier"), f.get("secret")) {
            (Some(i), Some(s)) => (Some(i), Some(s)),
            _ => (f.get("username"), f.get("password")),
        };
        match (id, secret) {
            (Some(id), Some(secret)) => c
                .credentials
                .iter()
                .find(|k| k.identifier == id && k.secret == secret)
                .map(|k| k.allowed_actions.clone())
                .or_else(|| {
                    c.admins
                        .iter()
                        .any(|(u, p)| u == id && md5_hex(p) == secret.to_ascii_lowercase())
                        .then_some(None)
                }),
            _ => None,
        }
    };
    let ip_error = (c.ip_failure_status, error(format!("Invalid IP {ip}")));
    let auth_error = (c.auth_failure_status, error("Authentication Failed"));
    if c.ip_check_first && !ip_ok() {
        return ip_error;
    }
    let Some(allowed) = credential else {
        return auth_error;
    };
    if !c.ip_check_first && !ip_ok() {
        return ip_error;
    }
    if f.get("responsetype").unwrap_or("json") != "json" {
        return (200, error("Unsupported response type"));
    }
    if let Some(allowed) = allowed {
        if !allowed.contains(action) {
            return (
                200,
                error(format!("Invalid Permissions: API action \"{action}\" is not allowed")),
            );
        }
    }
    let quirk = c.quirk_status_instead_of_result;
    match s.state.dispatch(action, f, quirk) {
        None => (200, error("Command Not Found")),
        Some(Err(message)) => (200, error(message)),
        Some(Ok(mut fields)) => {
            let key = if fields.remove("__status_quirk").is_some() {
                "status"
            } else {
                "result"
            };
            let mut out = serde_json::Map::new();
            out.insert(key.into(), json!("success"));
            out.extend(fields);
            (200, Value::Object(out))
        }
    }
}
