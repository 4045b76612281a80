//! A contract fake of the WHMCS External API (`includes/api.php`) for
//! cdrate's tests, following `../shared/whmcs/API.md` §7: form POSTs with
//! PHP bracket keys, the access checks and their exact refusals, the
//! documented envelope, actions, error strings and quirks, in-memory
//! state, fault injection, and inspection routes under `/_fake/`.
//!
//! [`start`] serves on a tokio task and returns a [`FakeHandle`] for
//! seeding, faults and typed reads of the state; the `whmcs-fake` binary
//! runs the same server as a process for the PHP harness.
//!
//! Modules: [`config`] (what is configurable), [`form`] (PHP's view of the
//! body), [`http`] (hand-written HTTP/1.1, so a fault can drop the
//! connection after the commit), [`auth`] (IP, credentials, roles),
//! [`state`] (the data and the seed format), `actions` (the API commands),
//! [`faults`], and `server` (accept loop and routes).
//!
//! Inspection routes: `GET /_fake/state`, `POST /_fake/reset`,
//! `POST /_fake/seed` ([`Seed`] JSON), `GET|DELETE /_fake/requests`
//! ([`Received`], credentials redacted), `GET|POST|DELETE /_fake/faults`
//! ([`Fault`] JSON, one or a list).

mod actions;
pub mod auth;
pub mod config;
pub mod faults;
pub mod form;
pub mod http;
mod server;
pub mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use config::{Admin, Behaviour, CheckOrder, Credential, FakeConfig, Quirks, DEFAULT_IDENTIFIER, DEFAULT_SECRET};
pub use faults::{Fault, FaultKind};
pub use server::Received;
pub use state::{BillableItem, Client, Invoice, ModuleCall, Seed, Service, State};

use server::{lock, Shared};

/// What replaces a credential in everything the fake shows.
pub const REDACTED: &str = "[redacted]";

#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    #[error("binding {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl FakeError {
    /// A stable snake_case code, as every library error in the workspace has.
    pub fn code(&self) -> &'static str {
        match self {
            FakeError::Bind { .. } => "fake_bind_failed",
            FakeError::Config(_) => "fake_invalid_config",
        }
    }
}

/// A running fake. Clones share it; dropping them does not stop it
/// ([`FakeHandle::shutdown`] does).
#[derive(Clone)]
pub struct FakeHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<Notify>,
}

impl std::fmt::Debug for FakeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Binds `config.listen` and serves on a tokio task (needs a running
/// tokio runtime).
pub async fn start(config: FakeConfig) -> Result<FakeHandle, FakeError> {
    if let Some(today) = &config.behaviour.today {
        chrono::NaiveDate::parse_from_str(today, "%Y-%m-%d")
            .map_err(|e| FakeError::Config(format!("behaviour.today {today:?}: {e}")))?;
    }
    let addr = config.listen;
    let bind = |source| FakeError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let shared = Arc::new(Mutex::new(Shared {
        config,
        state: State::new(),
        requests: Vec::new(),
        faults: Default::default(),
    }));
    let stop = Arc::new(Notify::new());
    tokio::spawn(server::accept_loop(listener, shared.clone(), stop.clone()));
    Ok(FakeHandle { addr, shared, stop })
}

impl FakeHandle {
    /// The base URL, `http://127.0.0.1:PORT` (WHMCS's "System URL").
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API endpoint, `<url>/includes/api.php`.
    pub fn api_url(&self) -> String {
        format!("{}/includes/api.php", self.url())
    }

    /// Adds clients, services, invoices, … (see [`Seed`]).
    pub fn seed(&self, seed: Seed) {
        lock(&self.shared).seed(seed);
    }

    /// Empties the state, the request log and the faults (the config stays).
    pub fn reset(&self) {
        lock(&self.shared).reset();
    }

    /// Queues a fault for the next matching requests.
    pub fn add_fault(&self, fault: Fault) {
        lock(&self.shared).faults.add(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared).faults.clear();
    }

    /// Faults not used up yet.
    pub fn faults(&self) -> Vec<Fault> {
        lock(&self.shared).faults.pending()
    }

    /// Scripts (or, with `None`, removes) the error a Module* command
    /// returns: `key` is the lower-case action (`modulesuspend`) or
    /// `action:serviceid` (`modulesuspend:88`).
    pub fn set_module_error(&self, key: &str, message: Option<&str>) {
        let errors = &mut lock(&self.shared).state.module_errors;
        match message {
            Some(m) => errors.insert(key.to_ascii_lowercase(), m.to_owned()),
            None => errors.remove(&key.to_ascii_lowercase()),
        };
    }

    /// Changes the configuration of the running fake (`listen` and
    /// `max_body_bytes` of connections already open excepted).
    pub fn configure(&self, change: impl FnOnce(&mut FakeConfig)) {
        change(&mut lock(&self.shared).config);
    }

    pub fn config(&self) -> FakeConfig {
        lock(&self.shared).config.clone()
    }

    /// The whole state as JSON (what `GET /_fake/state` returns).
    pub fn snapshot(&self) -> Value {
        lock(&self.shared).state.dump()
    }

    /// A copy of the whole state.
    pub fn state(&self) -> State {
        lock(&self.shared).state.clone()
    }

    pub fn clients(&self) -> Vec<Client> {
        lock(&self.shared).state.clients.values().cloned().collect()
    }

    pub fn services(&self) -> Vec<Service> {
        lock(&self.shared).state.services.values().cloned().collect()
    }

    /// Billable items in id order.
    pub fn billable_items(&self) -> Vec<BillableItem> {
        lock(&self.shared).state.billable_items.values().cloned().collect()
    }

    /// Invoices in id order.
    pub fn invoices(&self) -> Vec<Invoice> {
        lock(&self.shared).state.invoices.values().cloned().collect()
    }

    pub fn invoice(&self, id: u64) -> Option<Invoice> {
        lock(&self.shared).state.invoices.get(&id).cloned()
    }

    /// Module commands carried out, in order.
    pub fn module_calls(&self) -> Vec<ModuleCall> {
        lock(&self.shared).state.module_calls.clone()
    }

    /// API requests received, in order, credentials redacted.
    pub fn requests(&self) -> Vec<Received> {
        lock(&self.shared).requests.clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared).requests.clear();
    }

    /// Stops accepting connections (requests in flight still finish).
    pub fn shutdown(&self) {
        self.stop.notify_one();
    }
}
