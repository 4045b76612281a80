//! How a fake behaves: its credentials and access rules (API.md §1.2-1.3,
//! §7.2-7.4), the HTTP statuses of refusals, the documented quirks it
//! reproduces (§7.9) and the switches for behaviour WHMCS does not
//! document (§9). Every field has a default, so a JSON config file (the
//! binary's `--config`) only names what it changes.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An API credential (identifier + secret) and the actions its roles
/// allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub identifier: String,
    pub secret: String,
    /// The union of the credential's roles, matched case-insensitively;
    /// `None` = every action.
    #[serde(default)]
    pub allowed_actions: Option<BTreeSet<String>>,
}

/// An admin user for the legacy login: `username` + MD5 hex of `password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admin {
    pub username: String,
    /// The plain login password; requests carry its MD5 hex digest.
    pub password: String,
}

/// Which refusal wins when a request fails both checks; WHMCS's order is
/// `[unconfirmed]` (API.md §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckOrder {
    IpFirst,
    CredentialsFirst,
}

/// Documented shapes of WHMCS answers (API.md §1.7, §7.9). The defaults
/// follow the documentation; switching one off gives a "tidier" WHMCS a
/// client must also cope with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quirks {
    /// Money and rates as strings (`"15.95"`, `"0.000"`); off: JSON numbers.
    pub money_as_strings: bool,
    /// CreateInvoice's `invoiceid` as a string, as in the docs' example.
    pub create_invoice_id_as_string: bool,
    /// GetClientsProducts' `totalresults` as a string, as in the docs' example.
    pub products_totalresults_as_string: bool,
    /// GetInvoice's `transactions` is `""` when there are none; off:
    /// `{"transaction": []}`.
    pub empty_transactions_as_string: bool,
    /// AddBillableItem answers `{"status": "success", …}` instead of
    /// `result`, as the docs' example does. Off by default.
    pub add_billable_item_status_key: bool,
    /// Every number of every answer as a string, as WHMCS's own (flattened)
    /// example responses show them. Off by default.
    pub all_numbers_as_strings: bool,
}

impl Default for Quirks {
    fn default() -> Self {
        Quirks {
            money_as_strings: true,
            create_invoice_id_as_string: true,
            products_totalresults_as_string: true,
            empty_transactions_as_string: true,
            add_billable_item_status_key: false,
            all_numbers_as_strings: false,
        }
    }
}

/// Behaviour WHMCS does not document (API.md §9), with the fake's choice
/// as the default and a switch for the other reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    /// AddBillableItem requires `unit` (`hours` | `quantity`), as documented
    /// since 8.2. Off: a missing `unit` is taken as `quantity` (a wrong one
    /// is still refused).
    pub require_unit: bool,
    /// AddBillableItem's `invoiceaction` when omitted. `[unconfirmed]`
    pub default_invoiceaction: String,
    /// A billable item's invoice line is `amount × quantity` instead of
    /// `amount` (the docs call `amount` the total). `[unconfirmed]`
    pub amount_times_quantity: bool,
    /// Whether lines made from billable items are taxed. `[unconfirmed]`
    pub billable_item_lines_taxed: bool,
    /// Whether lines made from due services are taxed (a product setting
    /// in WHMCS, which the fake does not model).
    pub service_lines_taxed: bool,
    /// `nextinvoice` items only join an invoice GenInvoices makes for
    /// something else (the wiki's reading); off: GenInvoices invoices them
    /// on their own, like `nextcron`.
    pub nextinvoice_waits_for_other_lines: bool,
    /// Services and `duedate`/`recur` items are invoiced this many days
    /// before they are due (WHMCS's default setting is 14).
    pub invoice_days_in_advance: u32,
    /// Tax rates of invoices that do not set their own (WHMCS derives them
    /// from tax rules the fake does not model).
    pub default_taxrate: Decimal,
    pub default_taxrate2: Decimal,
    /// A non-numeric money or quantity parameter is refused with
    /// `Invalid amount '<value>'` (a fake-only message). Off: it counts as
    /// 0, as PHP's `(float)` cast would. `[unconfirmed]`
    pub reject_invalid_amounts: bool,
    /// "Today" as `YYYY-mm-dd` for invoice dates, due checks and the
    /// `Overdue` filter; `None`: the current UTC date.
    pub today: Option<String>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            require_unit: true,
            default_invoiceaction: "noinvoice".into(),
            amount_times_quantity: false,
            billable_item_lines_taxed: true,
            service_lines_taxed: false,
            nextinvoice_waits_for_other_lines: false,
            invoice_days_in_advance: 14,
            default_taxrate: Decimal::ZERO,
            default_taxrate2: Decimal::ZERO,
            reject_invalid_amounts: true,
            today: None,
        }
    }
}

/// Everything a fake is started with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FakeConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    pub credentials: Vec<Credential>,
    /// Admin users for the legacy username + MD5 password login (every
    /// action allowed).
    pub admins: Vec<Admin>,
    /// The API IP allow-list; `None` (the default) = no IP restriction.
    pub allowed_ips: Option<Vec<String>>,
    /// `$api_access_key`: a request carrying it as `accesskey` skips the
    /// IP check.
    pub access_key: Option<String>,
    pub check_order: CheckOrder,
    /// Status of `Authentication Failed`. `[unconfirmed]` (403 is the common report)
    pub auth_failure_status: u16,
    /// Status of `Invalid IP <ip>` (403 is user-reported).
    pub ip_failure_status: u16,
    /// Status of `Invalid Permissions: …`. `[unconfirmed]` (403 is the common report)
    pub permission_failure_status: u16,
    /// A request without `responsetype` is answered in JSON; off: it gets
    /// `Unsupported response type`. WHMCS's default is `[unconfirmed]`.
    pub omitted_responsetype_is_json: bool,
    pub max_body_bytes: usize,
    pub quirks: Quirks,
    pub behaviour: Behaviour,
}

/// The identifier of the default credential.
pub const DEFAULT_IDENTIFIER: &str = "cdrate-test-identifier";
/// The secret of the default credential.
pub const DEFAULT_SECRET: &str = "cdrate-test-secret";

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            credentials: vec![Credential {
                identifier: DEFAULT_IDENTIFIER.into(),
                secret: DEFAULT_SECRET.into(),
                allowed_actions: None,
            }],
            admins: Vec::new(),
            allowed_ips: None,
            access_key: None,
            check_order: CheckOrder::IpFirst,
            auth_failure_status: 403,
            ip_failure_status: 403,
            permission_failure_status: 403,
            omitted_responsetype_is_json: true,
            max_body_bytes: 8 * 1024 * 1024,
            quirks: Quirks::default(),
            behaviour: Behaviour::default(),
        }
    }
}
