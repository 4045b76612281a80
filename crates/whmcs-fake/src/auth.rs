//! Who may call what (API.md §1.2-1.5, §7.2-7.4): the IP allow-list with
//! its access-key bypass, the credential check (identifier + secret, the
//! same pair as username + password, or an admin login with the MD5 of
//! its password), and the credential's roles. Refusals carry the exact
//! WHMCS messages and the configured HTTP status.

use std::net::IpAddr;

use md5::{Digest, Md5};

use crate::config::{CheckOrder, FakeConfig};
use crate::form::Form;

/// A refused request: HTTP status and the `message` of the error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub status: u16,
    pub message: String,
}

/// What an authenticated caller may do: `None` = every action.
type Allowed<'a> = Option<&'a std::collections::BTreeSet<String>>;

/// Checks `form` from `ip` for `action` (as sent; compared ignoring case).
pub fn authorize(config: &FakeConfig, form: &Form, ip: IpAddr, action: &str) -> Result<(), Denied> {
    let ip_denied = || Denied {
        status: config.ip_failure_status,
        // The caller's address as WHMCS prints it (IPv4 without a v6 prefix).
        message: format!("Invalid IP {}", ip.to_canonical()),
    };
    let auth_denied = || Denied {
        status: config.auth_failure_status,
        message: "Authentication Failed".into(),
    };
    let allowed = match config.check_order {
        CheckOrder::IpFirst => {
            if !ip_allowed(config, form, ip) {
                return Err(ip_denied());
            }
            authenticate(config, form).ok_or_else(auth_denied)?
        }
        CheckOrder::CredentialsFirst => {
            let allowed = authenticate(config, form).ok_or_else(auth_denied)?;
            if !ip_allowed(config, form, ip) {
                return Err(ip_denied());
            }
            allowed
        }
    };
    match allowed {
        Some(actions) if !actions.iter().any(|a| a.eq_ignore_ascii_case(action)) => Err(Denied {
            status: config.permission_failure_status,
            message: format!(
                "Invalid Permissions: API action \"{}\" is not allowed",
                action.to_ascii_lowercase()
            ),
        }),
        _ => Ok(()),
    }
}

fn ip_allowed(config: &FakeConfig, form: &Form, ip: IpAddr) -> bool {
    let Some(list) = &config.allowed_ips else {
        return true;
    };
    let listed = list.iter().any(|a| {
        a.trim()
            .parse::<IpAddr>()
            .is_ok_and(|a| a.to_canonical() == ip.to_canonical())
    });
    let key_ok = config
        .access_key
        .as_deref()
        .is_some_and(|key| !key.is_empty() && form.raw("accesskey") == Some(key));
    listed || key_ok
}

/// The caller's allowed actions, or `None` when the credentials are wrong.
fn authenticate<'a>(config: &'a FakeConfig, form: &Form) -> Option<Allowed<'a>> {
    // 7.2+ credentials; WHMCS also takes the pair in username/password.
    let pair = match (form.get("identifier"), form.get("secret")) {
        (Some(id), Some(secret)) => Some((id, secret)),
        _ => form.get("username").zip(form.get("password")),
    };
    let (id, secret) = pair?;
    if let Some(c) = config
        .credentials
        .iter()
        .find(|c| c.identifier == id && c.secret == secret)
    {
        return Some(c.allowed_actions.as_ref());
    }
    // Legacy: an admin login name and the MD5 hex of its password. Only
    // from username/password, never from identifier/secret.
    let (user, md5) = form.get("username").zip(form.get("password"))?;
    config
        .admins
        .iter()
        .any(|a| a.username == user && md5_hex(&a.password).eq_ignore_ascii_case(md5))
        .then_some(None)
}

pub fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Admin, Credential};

    #[test]
    fn md5_of_a_known_password() {
        assert_eq!(md5_hex("hunter2"), "2ab96390c7dbe3439de74d0c9b0b1767");
    }

    #[test]
    fn check_order_decides_which_refusal_wins() {
        let mut config = FakeConfig {
            allowed_ips: Some(vec!["203.0.113.7".into()]),
            admins: vec![Admin {
                username: "admin".into(),
                password: "hunter2".into(),
            }],
            credentials: vec![Credential {
                identifier: "r".into(),
                secret: "s".into(),
                allowed_actions: Some(["GetInvoice".to_owned()].into()),
            }],
            ..FakeConfig::default()
        };
        let local: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let bad = Form::parse(b"identifier=x&secret=y");
        let err = authorize(&config, &bad, local, "GetInvoice").unwrap_err();
        assert_eq!(err.message, "Invalid IP 127.0.0.1");
        config.check_order = CheckOrder::CredentialsFirst;
        let err = authorize(&config, &bad, local, "GetInvoice").unwrap_err();
        assert_eq!(err.message, "Authentication Failed");
        config.allowed_ips = Some(vec!["127.0.0.1".into()]);
        let reader = Form::parse(b"username=r&password=s");
        assert!(authorize(&config, &reader, local, "getinvoice").is_ok());
        let err = authorize(&config, &reader, local, "GetInvoices").unwrap_err();
        assert_eq!(
            err.message,
            "Invalid Permissions: API action \"getinvoices\" is not allowed"
        );
        let admin = Form::parse(b"username=admin&password=2AB96390C7DBE3439DE74D0C9B0B1767");
        assert!(authorize(&config, &admin, local, "AnyThing").is_ok());
        let plain = Form::parse(b"username=admin&password=hunter2");
        assert!(authorize(&config, &plain, local, "GetInvoice").is_err());
    }
}
