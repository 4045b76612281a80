//! The accounts book: one test per validation code (a minimal book with
//! exactly that problem, checked for the code and its file:line:column), the
//! happy path, identity lookups, the plan check against a tariff set, and the
//! demo files in `examples/`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use cdrate_core::{Currency, Source};
use cdrate_rating::{
    load_accounts, load_dir, normalize_number, parse_accounts, parse_tariffs, AccountError, AccountFile, BillingMode,
    Dialled,
};
use rust_decimal::Decimal;

const HEADER: &str = "account,plan,currency,country_code,national_prefix,international_prefix,whmcs_client_id,whmcs_service_id,cycle_day,credit_limit,inbound_plan,extension_length\n";
/// A valid row. Columns: 1 account, 2 plan, 3 currency, 4 country_code,
/// 5 national_prefix, 6 international_prefix, 7 whmcs_client_id,
/// 8 whmcs_service_id, 9 cycle_day, 10 credit_limit, 11 inbound_plan,
/// 12 extension_length.
const ACME: &str = "acme,business,USD,1,1,011,1042,2231,15,1500.00,tollfree-in,4";

/// `ACME` under a header with the optional `billing` column (13th) set to `mode`.
fn acme_billing(mode: &str) -> String {
    format!(
        "{}billing\n{ACME},{mode}\n",
        HEADER.trim_end_matches('\n').to_owned() + ","
    )
}
const IDENTITIES: &str = "source,account_key,account\nfreeswitch,acme.pbx.example.net,acme\n";

fn accounts(rows: &[&str]) -> String {
    let mut s = HEADER.to_owned();
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

fn identities(rows: &[&str]) -> String {
    let mut s = "source,account_key,account\n".to_owned();
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

/// Parses the two texts and expects exactly one problem, with this code and
/// location.
fn check(accounts: &str, identities: &str, code: &str, file: AccountFile, line: u64, column: usize) -> AccountError {
    let errors = match parse_accounts(accounts, identities) {
        Ok(_) => panic!("expected {code}, but the accounts loaded"),
        Err(e) => e,
    };
    assert_eq!(errors.len(), 1, "expected only {code}, got:\n{errors}");
    let e = errors.0.into_iter().next().unwrap();
    assert_eq!((e.code(), e.file, e.line, e.column), (code, file, line, column), "{e}");
    e
}

/// `ACME` with field `column` (1-based) replaced by `value`.
fn acme_with(column: usize, value: &str) -> String {
    let mut fields: Vec<&str> = ACME.split(',').collect();
    fields[column - 1] = value;
    fields.join(",")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cdrate-accounts-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_baseline_is_valid() {
    let book = parse_accounts(&accounts(&[ACME]), IDENTITIES).unwrap();
    assert_eq!((book.accounts().len(), book.identity_count()), (1, 1));
}

#[test]
fn missing_file() {
    let dir = temp_dir("missing_file");
    std::fs::write(dir.join("accounts.csv"), accounts(&[ACME])).unwrap();
    let errors = load_accounts(&dir.join("accounts.csv"), &dir.join("identities.csv")).unwrap_err();
    let found: Vec<_> = errors.iter().map(|e| (e.code(), e.file, e.line, e.column)).collect();
    assert_eq!(found, [("missing_file", AccountFile::Identities, 0, 0)]);
    std::fs::write(dir.join("identities.csv"), IDENTITIES).unwrap();
    let book = load_accounts(&dir.join("accounts.csv"), &dir.join("identities.csv")).unwrap();
    assert_eq!(book.accounts().len(), 1);
}

#[test]
fn bad_csv() {
    let dir = temp_dir("bad_csv");
    std::fs::write(dir.join("accounts.csv"), b"account,plan\n\xff\xfe,home\n").unwrap();
    std::fs::write(dir.join("identities.csv"), IDENTITIES).unwrap();
    let errors = load_accounts(&dir.join("accounts.csv"), &dir.join("identities.csv")).unwrap_err();
    let found: Vec<_> = errors.iter().map(|e| (e.code(), e.file, e.line, e.column)).collect();
    assert_eq!(found, [("bad_csv", AccountFile::Accounts, 0, 0)]);
}

#[test]
fn unknown_column() {
    let a = format!("{}notes\n{ACME},x\n", HEADER.trim_end().to_owned() + ",");
    check(&a, IDENTITIES, "unknown_column", AccountFile::Accounts, 1, 13);
}

#[test]
fn missing_column() {
    let a = "account,plan,currency,country_code,national_prefix,international_prefix,whmcs_client_id,whmcs_service_id,cycle_day\nacme,business,USD,1,1,011,,,1\n";
    let e = check(a, IDENTITIES, "missing_column", AccountFile::Accounts, 1, 0);
    assert!(e.to_string().contains("\"credit_limit\""), "{e}");
}

#[test]
fn duplicate_column() {
    let i = "source,account_key,account,source\nfreeswitch,acme.pbx.example.net,acme,freeswitch\n";
    check(&accounts(&[ACME]), i, "duplicate_column", AccountFile::Identities, 1, 4);
}

#[test]
fn bad_row() {
    check(
        &accounts(&[ACME, "bob,home,USD"]),
        IDENTITIES,
        "bad_row",
        AccountFile::Accounts,
        3,
        0,
    );
}

#[test]
fn missing_value() {
    for (column, field) in [(1, "account"), (2, "plan"), (3, "currency"), (4, "country_code")] {
        let e = check(
            &accounts(&[ACME, &acme_with(column, "").replacen("acme", "bob", 1)]),
            IDENTITIES,
            "missing_value",
            AccountFile::Accounts,
            3,
            column,
        );
        assert!(
            e.to_string()
                .starts_with(&format!("accounts.csv:3:{column}: missing_value: {field}")),
            "{e}"
        );
    }
    for (column, row) in [(1, ",bob,acme"), (2, "twilio,,acme"), (3, "twilio,ACx,")] {
        check(
            &accounts(&[ACME]),
            &identities(&[row]),
            "missing_value",
            AccountFile::Identities,
            2,
            column,
        );
    }
}

#[test]
fn duplicate_account() {
    let e = check(
        &accounts(&[ACME, "bob,home,USD,1,1,011,,,,,,", ACME]),
        IDENTITIES,
        "duplicate_account",
        AccountFile::Accounts,
        4,
        1,
    );
    assert!(e.to_string().contains("first on line 2"), "{e}");
}

#[test]
fn bad_currency() {
    let e = check(
        &accounts(&[ACME, &acme_with(3, "usd").replacen("acme", "bob", 1)]),
        IDENTITIES,
        "bad_currency",
        AccountFile::Accounts,
        3,
        3,
    );
    assert_eq!(
        e.to_string(),
        "accounts.csv:3:3: bad_currency: \"usd\" is not an ISO 4217 currency code"
    );
}

#[test]
fn bad_country_code() {
    for value in ["044", "0", "1234", "+1", "1a"] {
        check(
            &accounts(&[&acme_with(4, value)]),
            IDENTITIES,
            "bad_country_code",
            AccountFile::Accounts,
            2,
            4,
        );
    }
}

#[test]
fn bad_prefix() {
    check(
        &accounts(&[&acme_with(5, "1a")]),
        IDENTITIES,
        "bad_prefix",
        AccountFile::Accounts,
        2,
        5,
    );
    check(
        &accounts(&[&acme_with(6, "+")]),
        IDENTITIES,
        "bad_prefix",
        AccountFile::Accounts,
        2,
        6,
    );
    // A national prefix that begins with the international one could never
    // match, because the international prefix is tried first.
    let shadowed = acme_with(5, "00").replace(",011,", ",0,");
    let e = check(
        &accounts(&[&shadowed]),
        IDENTITIES,
        "bad_prefix",
        AccountFile::Accounts,
        2,
        5,
    );
    assert!(e.to_string().contains("never match"), "{e}");
    // Empty prefixes are fine.
    let none = acme_with(5, "").replace(",011,", ",,");
    parse_accounts(&accounts(&[&none]), IDENTITIES).unwrap();
}

#[test]
fn bad_cycle_day() {
    for value in ["0", "29", "+5", "x", "1.5", "300"] {
        check(
            &accounts(&[&acme_with(9, value)]),
            IDENTITIES,
            "bad_cycle_day",
            AccountFile::Accounts,
            2,
            9,
        );
    }
}

#[test]
fn bad_decimal() {
    for value in ["1e3", "1,000", "abc", "1.2.3", "+5", "1_000", "."] {
        check(
            &accounts(&[&acme_with(10, &format!("\"{value}\""))]),
            IDENTITIES,
            "bad_decimal",
            AccountFile::Accounts,
            2,
            10,
        );
    }
}

#[test]
fn negative_amount() {
    let e = check(
        &accounts(&[&acme_with(10, "-5.00")]),
        IDENTITIES,
        "negative_amount",
        AccountFile::Accounts,
        2,
        10,
    );
    assert!(e.to_string().contains("credit_limit"), "{e}");
    // Zero, even written `-0`, is a limit of nothing, not a negative one.
    let book = parse_accounts(&accounts(&[&acme_with(10, "-0")]), IDENTITIES).unwrap();
    assert_eq!(book.accounts()[0].credit_limit, Some(Decimal::ZERO));
}

#[test]
fn bad_integer() {
    for (column, value) in [(7, "0"), (7, "-1"), (7, "12a"), (8, "+7"), (8, "99999999999999999999")] {
        check(
            &accounts(&[&acme_with(column, value)]),
            IDENTITIES,
            "bad_integer",
            AccountFile::Accounts,
            2,
            column,
        );
    }
}

#[test]
fn bad_billing_mode() {
    for value in ["Push", "whmcs", "pull-push"] {
        check(
            &acme_billing(value),
            IDENTITIES,
            "bad_billing_mode",
            AccountFile::Accounts,
            2,
            13,
        );
    }
}

#[test]
fn billing_mode_is_optional_and_defaults_to_the_configuration() {
    let book = parse_accounts(&acme_billing(""), IDENTITIES).unwrap();
    assert_eq!(book.account("acme").unwrap().billing, None);
    let book = parse_accounts(&accounts(&[ACME]), IDENTITIES).unwrap();
    assert_eq!(book.account("acme").unwrap().billing, None);
    for (text, mode) in [
        ("push", BillingMode::Push),
        ("pull", BillingMode::Pull),
        ("none", BillingMode::None),
    ] {
        let book = parse_accounts(&acme_billing(text), IDENTITIES).unwrap();
        assert_eq!(book.account("acme").unwrap().billing, Some(mode));
    }
}

#[test]
fn bad_extension_length() {
    for value in ["8", "x", "-1", "4.0"] {
        check(
            &accounts(&[&acme_with(12, value)]),
            IDENTITIES,
            "bad_extension_length",
            AccountFile::Accounts,
            2,
            12,
        );
    }
}

#[test]
fn unknown_source() {
    for source in ["asterisk", "FreeSWITCH", "fritz"] {
        check(
            &accounts(&[ACME]),
            &identities(&[&format!("{source},100,acme")]),
            "unknown_source",
            AccountFile::Identities,
            2,
            1,
        );
    }
}

#[test]
fn unknown_account() {
    let e = check(
        &accounts(&[ACME]),
        &identities(&["freeswitch,acme.pbx.example.net,acme", "twilio,ACx,nobody"]),
        "unknown_account",
        AccountFile::Identities,
        3,
        3,
    );
    assert_eq!(
        e.to_string(),
        "identities.csv:3:3: unknown_account: account \"nobody\" is not defined in accounts.csv"
    );
}

#[test]
fn duplicate_identity() {
    let e = check(
        &accounts(&[ACME, "bob,home,USD,1,1,011,,,,,,"]),
        &identities(&["freeswitch,shared,acme", "twilio,shared,bob", "freeswitch,shared,bob"]),
        "duplicate_identity",
        AccountFile::Identities,
        4,
        2,
    );
    assert!(e.to_string().contains("first on line 2"), "{e}");
}

const PLANS: &str = "plan,currency,timezone,decimals,rounding,fallback\n\
                     business,USD,America/Chicago,4,half_up,\n\
                     tollfree-in,USD,America/Chicago,4,half_up,\n\
                     euro,EUR,Europe/Berlin,4,half_up,\n";
const RATES: &str = "plan,prefix,destination,band,connect_fee,rate_per_min,min_seconds,initial_increment,next_increment,effective_from,effective_to\n\
                     business,1,USA/Canada,,0,0.008,0,6,6,2026-01-01T00:00:00Z,\n";

#[test]
fn unknown_plan() {
    let tariffs = parse_tariffs(PLANS, "", RATES).unwrap();
    let book = parse_accounts(
        &accounts(&[
            ACME,
            "bob,home,USD,1,1,011,,,,,,",
            "carol,business,USD,1,1,011,,,,,tollfree,",
        ]),
        IDENTITIES,
    )
    .unwrap();
    let found: Vec<_> = book
        .check_plans(&tariffs)
        .iter()
        .map(|e| (e.code(), e.file, e.line, e.column, e.to_string()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "unknown_plan",
                AccountFile::Accounts,
                3,
                2,
                "accounts.csv:3:2: unknown_plan: plan \"home\" is not a plan of the tariff set".to_owned()
            ),
            (
                "unknown_plan",
                AccountFile::Accounts,
                4,
                11,
                "accounts.csv:4:11: unknown_plan: inbound_plan \"tollfree\" is not a plan of the tariff set".to_owned()
            ),
        ]
    );
}

#[test]
fn plan_currency_mismatch() {
    let tariffs = parse_tariffs(PLANS, "", RATES).unwrap();
    let book = parse_accounts(
        &accounts(&[
            ACME,
            "bob,euro,USD,1,1,011,,,,,,",
            "hans,euro,EUR,49,0,00,,,,,tollfree-in,",
        ]),
        IDENTITIES,
    )
    .unwrap();
    let found: Vec<_> = book
        .check_plans(&tariffs)
        .iter()
        .map(|e| (e.code(), e.line, e.column))
        .collect();
    assert_eq!(
        found,
        [("plan_currency_mismatch", 3, 2), ("plan_currency_mismatch", 4, 11)]
    );
    let e = &book.check_plans(&tariffs)[0];
    assert_eq!(
        e.to_string(),
        "accounts.csv:3:2: plan_currency_mismatch: plan \"euro\" is in EUR, the account is in USD"
    );
}

#[test]
fn every_problem_is_reported_in_one_pass() {
    let errors = parse_accounts(
        &accounts(&[ACME, "bob,home,usd,044,1,011,0,,31,-1,,9", ACME]),
        &identities(&[
            "skype,bob,bob",
            "twilio,ACx,nobody",
            "generic,acme,acme",
            "generic,acme,acme",
        ]),
    )
    .unwrap_err();
    let found: Vec<_> = errors.iter().map(|e| (e.file, e.line, e.column, e.code())).collect();
    use AccountFile::{Accounts as A, Identities as I};
    assert_eq!(
        found,
        [
            (A, 3, 3, "bad_currency"),
            (A, 3, 4, "bad_country_code"),
            (A, 3, 7, "bad_integer"),
            (A, 3, 9, "bad_cycle_day"),
            (A, 3, 10, "negative_amount"),
            (A, 3, 12, "bad_extension_length"),
            (A, 4, 1, "duplicate_account"),
            (I, 2, 1, "unknown_source"),
            (I, 3, 3, "unknown_account"),
            (I, 5, 2, "duplicate_identity"),
        ]
    );
    // One problem per line, each in the file:line:column style.
    let text = errors.to_string();
    assert_eq!(text.lines().count(), found.len());
    assert!(
        text.lines()
            .all(|l| l.starts_with("accounts.csv:") || l.starts_with("identities.csv:")),
        "{text}"
    );
}

#[test]
fn an_identity_of_an_invalid_account_reports_only_the_account() {
    // `bob`'s row is broken; its identity must not add an `unknown_account`.
    check(
        &accounts(&[ACME, "bob,home,usd,1,1,011,,,,,,"]),
        &identities(&["twilio,ACx,bob"]),
        "bad_currency",
        AccountFile::Accounts,
        3,
        3,
    );
}

#[test]
fn a_book_with_every_field_loads_as_written() {
    let book = parse_accounts(
        &accounts(&[ACME, "bob,home,GBP,44,0,00,,,,,,"]),
        &identities(&["freeswitch,ACME-0001,acme", "twilio,ACME-0001,bob", "generic,bob,bob"]),
    )
    .unwrap();
    assert_eq!(book.identity_count(), 3);
    let acme = book.account("acme").unwrap();
    assert_eq!(acme.id, "acme");
    assert_eq!(acme.plan, "business");
    assert_eq!(acme.inbound_plan.as_deref(), Some("tollfree-in"));
    assert_eq!(acme.currency, Currency::from_str("USD").unwrap());
    assert_eq!(
        (
            acme.numbering.country_code.as_str(),
            acme.numbering.national_prefix.as_str(),
            acme.numbering.international_prefix.as_str(),
            acme.numbering.extension_length,
        ),
        ("1", "1", "011", 4)
    );
    assert_eq!((acme.whmcs_client_id, acme.whmcs_service_id), (Some(1042), Some(2231)));
    assert_eq!(acme.cycle_day, 15);
    assert_eq!(acme.credit_limit, Some(Decimal::from_str("1500.00").unwrap()));
    // Empty optional fields take their defaults.
    let bob = book.account("bob").unwrap();
    assert_eq!(bob.inbound_plan, None);
    assert_eq!((bob.whmcs_client_id, bob.whmcs_service_id), (None, None));
    assert_eq!((bob.cycle_day, bob.credit_limit), (1, None));
    assert_eq!(bob.numbering.extension_length, 5);
    assert_eq!(
        book.accounts().iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["acme", "bob"]
    );
}

#[test]
fn optional_columns_may_be_absent_and_columns_in_any_order() {
    let a = "\u{feff}currency,account,credit_limit,plan,country_code,cycle_day,national_prefix,international_prefix,whmcs_service_id,whmcs_client_id\n\
             USD, acme ,,business,1,,1,011,,\n";
    let book = parse_accounts(a, IDENTITIES).unwrap();
    let acme = book.account("acme").unwrap();
    assert_eq!((acme.plan.as_str(), acme.inbound_plan.as_deref()), ("business", None));
    assert_eq!(acme.numbering.extension_length, 5);
}

#[test]
fn lookup_is_per_source() {
    let book = parse_accounts(
        &accounts(&[ACME, "bob,home,USD,1,1,011,,,,,,"]),
        &identities(&["freeswitch,100,acme", "zadarma,100,bob", "fritzbox,office-box:SIP0,bob"]),
    )
    .unwrap();
    let id = |source, key| book.lookup(source, key).map(|a| a.id.as_str());
    assert_eq!(id(Source::Freeswitch, "100"), Some("acme"));
    assert_eq!(id(Source::Zadarma, "100"), Some("bob"));
    assert_eq!(id(Source::Twilio, "100"), None);
    assert_eq!(id(Source::Fritzbox, "office-box:SIP0"), Some("bob"));
    assert_eq!(id(Source::Fritzbox, "office-box:SIP1"), None);
    assert_eq!(id(Source::Freeswitch, "acme"), None, "an account id is not an identity");
    assert!(book.account("nobody").is_none());
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[test]
fn the_example_book_loads_and_matches_the_example_tariffs() {
    let dir = examples();
    let book = load_accounts(&dir.join("accounts.csv"), &dir.join("identities.csv")).unwrap_or_else(|e| panic!("{e}"));
    let tariffs = load_dir(&dir.join("tariffs")).unwrap_or_else(|e| panic!("{e}"));
    let problems = book.check_plans(&tariffs);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(book.accounts().len(), 4);
    // Every source has at least one example identity.
    let text = std::fs::read_to_string(dir.join("identities.csv")).unwrap();
    for source in [
        Source::Freeswitch,
        Source::Twilio,
        Source::Zadarma,
        Source::Fritzbox,
        Source::Generic,
    ] {
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix(source.as_str())?.strip_prefix(',')?.split(',').next())
            .unwrap_or_else(|| panic!("no example identity for {source:?}"));
        assert!(book.lookup(source, key).is_some(), "{source:?} {key}");
    }
    let acme = book
        .lookup(Source::Twilio, "ACd95bafa3298668125a25bff98af1ceaf")
        .unwrap();
    assert_eq!(acme.id, "acme");
    assert_eq!(acme.inbound_plan.as_deref(), Some("tollfree-in"));
    assert_eq!(book.lookup(Source::Generic, "acme").map(|a| &a.id), Some(&acme.id));

    // The account's numbering plan drives normalization: NANP dialling.
    let n = |raw| normalize_number(raw, &acme.numbering).unwrap();
    assert_eq!(
        n("011 44 20 7946 0123"),
        Dialled::E164(cdrate_rating::E164::from_digits("442079460123").unwrap())
    );
    assert_eq!(
        n("1 (800) 555-0199"),
        Dialled::E164(cdrate_rating::E164::from_digits("18005550199").unwrap())
    );
    assert_eq!(n("1001"), Dialled::Internal("1001".into()));
}

/// `ACME` with `status` (14th) and `previous_plans` (15th) columns.
fn acme_lifecycle(status: &str, previous: &str) -> String {
    format!(
        "{}billing,status,previous_plans\n{ACME},,{status},{previous}\n",
        HEADER.trim_end_matches('\n').to_owned() + ","
    )
}

#[test]
fn bad_status() {
    for value in ["paused", "Active"] {
        check(
            &acme_lifecycle(value, ""),
            IDENTITIES,
            "bad_status",
            AccountFile::Accounts,
            2,
            14,
        );
    }
}

#[test]
fn bad_previous_plans() {
    for value in [
        "home",
        "home@yesterday",
        "@2026-11-01T00:00:00Z",
        "home@2026-11-02T00:00:00Z|world@2026-11-01T00:00:00Z",
        "home@2026-11-01T00:00:00Z|world@2026-11-01T00:00:00Z",
    ] {
        check(
            &acme_lifecycle("", value),
            IDENTITIES,
            "bad_previous_plans",
            AccountFile::Accounts,
            2,
            15,
        );
    }
}

#[test]
fn a_previous_plan_must_exist_in_the_tariffs() {
    let book = parse_accounts(&acme_lifecycle("", "nosuchplan@2026-11-01T00:00:00Z"), IDENTITIES).unwrap();
    let tariffs = load_dir(&examples().join("tariffs")).unwrap();
    let errors = book.check_plans(&tariffs);
    let codes: Vec<(&str, usize)> = errors.iter().map(|e| (e.code(), e.column)).collect();
    assert!(codes.contains(&("unknown_plan", 15)), "{codes:?}");
}

#[test]
fn a_plan_change_prices_calls_answered_after_it_and_suspension_only_flags() {
    use cdrate_core::{CallRecord, Direction, Disposition};
    let tariffs = load_dir(&examples().join("tariffs")).unwrap();
    // Until 12:00 the account was on `home` (UK 0.0250/min, 60 s steps);
    // since then `business` (London 4420: 0.0150/min, 6 s steps).
    let text = acme_lifecycle("suspended", "home@2026-11-20T12:00:00Z").replace(",tollfree-in,", ",,");
    let book = parse_accounts(&text, IDENTITIES).unwrap();
    let call = |answer: &str| CallRecord {
        schema: "call.v1".into(),
        id: format!("c-{answer}"),
        version: 1,
        source: Source::Freeswitch,
        account_key: "acme.pbx.example.net".into(),
        direction: Direction::Outbound,
        caller: "1001".into(),
        callee: "011442071234567".into(),
        callee_e164: None,
        start_at: answer.parse().unwrap(),
        answer_at: Some(answer.parse().unwrap()),
        end_at: answer.parse::<chrono::DateTime<chrono::Utc>>().unwrap() + chrono::Duration::seconds(30),
        duration_ms: 30_000,
        billable_ms: 30_000,
        disposition: Disposition::Answered,
        hangup_cause: None,
        trunk: None,
        attrs: Default::default(),
        received_at: "2026-11-21T00:00:00Z".parse().unwrap(),
    };
    let now = "2026-11-21T00:00:00Z".parse().unwrap();
    let before = cdrate_rating::rate::rate_call(call("2026-11-20T11:59:59Z"), &book, &tariffs, 1, now).unwrap();
    let after = cdrate_rating::rate::rate_call(call("2026-11-20T12:00:00Z"), &book, &tariffs, 1, now).unwrap();
    assert_eq!(before.plan.as_deref(), Some("home"));
    assert_eq!(before.cost, Decimal::from_str("0.0250").unwrap(), "60 s minimum step");
    assert_eq!(after.plan.as_deref(), Some("business"));
    assert_eq!(after.cost, Decimal::from_str("0.0075").unwrap(), "30 s at 0.0150/min");
    // Suspended: rated all the same, and flagged.
    assert_eq!(after.account_status.as_deref(), Some("suspended"));
    let active = parse_accounts(&acme_lifecycle("", ""), IDENTITIES).unwrap();
    let rated = cdrate_rating::rate::rate_call(call("2026-11-20T12:00:00Z"), &active, &tariffs, 1, now).unwrap();
    assert_eq!(rated.account_status, None);
}
