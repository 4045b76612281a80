//! The bus messages match their JSON Schemas in `schemas/events/`: every
//! `call.v1` and `rated.v1` payload a real `cdrate serve` writes to its
//! embedded log validates, the schemas list exactly the fields and enum
//! values serde writes, and they reject what cdrate never emits (a numeric
//! `cost`, an unknown field, a missing field, a non-UTC instant).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use boon::{Compiler, SchemaIndex, Schemas, ValidationError};
use cdrate_benches::calls::batch_json;
use cdrate_benches::http::Client;
use cdrate_bus::{CALLS_TOPIC, RATED_TOPIC};
use cdrate_core::{CallRecord, Direction, Disposition, RatedCall, Source};
use cdrate_store::{BusLog, LogEntry, Store, StoreSettings};
use serde_json::{json, Value};

use crate::harness::{eventually, Backend, World};

const SEED: u64 = 7;
/// Seeded records (answered, unanswered, inbound; over 20 account keys).
const SEEDED: u64 = 300;

/// Both event schemas, compiled with format assertions on (`date-time`).
struct EventSchemas {
    schemas: Schemas,
    call: SchemaIndex,
    rated: SchemaIndex,
    call_doc: Value,
    rated_doc: Value,
}

impl EventSchemas {
    fn load() -> EventSchemas {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/events");
        let mut compiler = Compiler::new();
        compiler.enable_format_assertions();
        let mut schemas = Schemas::new();
        let mut compile = |file: &str| {
            let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            let id = doc["$id"]
                .as_str()
                .unwrap_or_else(|| panic!("{file} has no $id"))
                .to_owned();
            compiler.add_resource(&id, doc.clone()).unwrap();
            let index = compiler
                .compile(&id, &mut schemas)
                .unwrap_or_else(|e| panic!("{file} is not a valid 2020-12 schema: {e:#}"));
            (index, doc)
        };
        let (call, call_doc) = compile("call.v1.schema.json");
        let (rated, rated_doc) = compile("rated.v1.schema.json");
        EventSchemas {
            schemas,
            call,
            rated,
            call_doc,
            rated_doc,
        }
    }

    /// Every violation of `value` as `(instance location, error kind)`, the
    /// kind in `Debug` form (`Pattern { got: .., want: .. }`).
    fn violations(&self, index: SchemaIndex, value: &Value) -> Vec<(String, String)> {
        fn leaves(e: &ValidationError, out: &mut Vec<(String, String)>) {
            if e.causes.is_empty() {
                out.push((e.instance_location.to_string(), format!("{:?}", e.kind)));
            }
            for c in &e.causes {
                leaves(c, out);
            }
        }
        let mut out = Vec::new();
        if let Err(e) = self.schemas.validate(value, index) {
            leaves(&e, &mut out);
        }
        out
    }

    /// Validates every payload; fails once, listing each bad message and
    /// its errors.
    fn check_all(&self, index: SchemaIndex, topic: &str, entries: &[LogEntry]) -> Vec<Value> {
        let mut bad = Vec::new();
        let mut values = Vec::new();
        for e in entries {
            let value: Value = match serde_json::from_slice(&e.payload) {
                Ok(v) => v,
                Err(err) => {
                    bad.push(format!("offset {}: not JSON ({err})", e.offset));
                    continue;
                }
            };
            let errors = self.violations(index, &value);
            if !errors.is_empty() {
                bad.push(format!("offset {}: {value}\n    {errors:?}", e.offset));
            }
            values.push(value);
        }
        assert!(
            bad.is_empty(),
            "{} of {} {topic} messages violate the schema:\n{}",
            bad.len(),
            entries.len(),
            bad.join("\n")
        );
        values
    }
}

/// A way to break a valid message: case name, the change, the instance
/// location and the error kind the schema must report.
type Mutation = (&'static str, Box<dyn Fn(&mut Value)>, &'static str, &'static str);

/// Asserts `value` is rejected with a violation at `location` whose kind
/// (`Type`, `Pattern`, `Required { want: ["plan"] }`…) contains `what`.
fn assert_rejected(s: &EventSchemas, index: SchemaIndex, case: &str, value: &Value, location: &str, what: &str) {
    let errors = s.violations(index, value);
    assert!(
        errors.iter().any(|(at, msg)| at == location && msg.contains(what)),
        "{case}: expected a violation at {location:?} mentioning {what:?}, got {errors:?}"
    );
}

/// Hand-written records that reach the branches the seeded ones do not:
/// every disposition, internal calls, a b-leg, attrs and trunk, a
/// catch-all rate, banded rates, an unanswered call without a route, a
/// source-supplied `callee_e164`, instants sent with an offset.
fn special_records() -> Vec<Value> {
    let call = |id: &str, key: &str, direction: &str, callee: &str, disposition: &str| {
        let answered = disposition == "answered";
        json!({
            "id": id, "version": 1, "source": "generic", "account_key": key,
            "direction": direction, "caller": "1001", "callee": callee,
            "start_at": "2026-11-18T15:00:00Z",
            "answer_at": if answered { json!("2026-11-18T15:00:05Z") } else { Value::Null },
            "end_at": "2026-11-18T15:02:05Z",
            "duration_ms": 125_000, "billable_ms": if answered { 120_000 } else { 0 },
            "disposition": disposition,
        })
    };
    let mut out = vec![
        call("x-internal", "k0", "internal", "1002", "answered"),
        call("x-catch-all", "k2", "outbound", "+6721234567", "answered"),
        call("x-no-route", "k-tf", "outbound", "+6721234567", "no_answer"),
        call("x-home", "k-home", "outbound", "+12125550147", "answered"),
        call("x-inbound", "k3", "inbound", "+12125550147", "answered"),
        call("x-busy", "k4", "outbound", "+442079460000", "busy"),
        call("x-failed", "k5", "outbound", "+442079460000", "failed"),
        call("x-cancelled", "k6", "outbound", "+442079460000", "cancelled"),
        call("x-missed", "k7", "inbound", "+12125550147", "missed"),
    ];
    let mut b_leg = call("x-b-leg", "k8", "outbound", "+4930123456", "answered");
    b_leg["attrs"] = json!({"leg": "b", "codec": "PCMA"});
    b_leg["trunk"] = json!("gw-berlin");
    b_leg["hangup_cause"] = json!("NORMAL_CLEARING");
    out.push(b_leg);
    let mut e164 = call("x-e164", "k9", "outbound", "+12125550147", "answered");
    e164["callee_e164"] = json!("12125550147");
    out.push(e164);
    let mut offset = call("x-offset", "k10", "outbound", "+33142685300", "answered");
    offset["start_at"] = json!("2026-11-18T17:00:00+02:00");
    offset["answer_at"] = json!("2026-11-18T17:00:05.5+02:00");
    offset["end_at"] = json!("2026-11-18T17:02:05.5+02:00");
    offset["received_at"] = json!("2026-11-18T17:03:00+02:00");
    out.push(offset);
    out
}

/// A world with two more accounts: one on a banded plan, one on a plan
/// without fallback (so an unanswered call can lack a route).
async fn world(name: &str) -> World {
    let world = World::new(name, &Backend::Embedded).await;
    let accounts = std::fs::read_to_string(world.dir.join("accounts.csv")).unwrap()
        + "home1,home,USD,1,1,011,,,1,\ntf1,tollfree-in,USD,1,1,011,,,1,\n";
    let identities =
        std::fs::read_to_string(world.dir.join("identities.csv")).unwrap() + "generic,k-home,home1\ngeneric,k-tf,tf1\n";
    std::fs::write(world.dir.join("accounts.csv"), accounts).unwrap();
    std::fs::write(world.dir.join("identities.csv"), identities).unwrap();
    world
}

/// Posts the seeded and the special records; returns how many.
async fn post_all(world: &World, addr: std::net::SocketAddr) -> u64 {
    let seeded = batch_json("s-", 0..SEEDED, 1, &world.keys, SEED);
    let special = serde_json::to_string(&special_records()).unwrap();
    let n = SEEDED + special_records().len() as u64;
    tokio::task::spawn_blocking(move || {
        let mut c = Client::new(addr);
        for body in [seeded, special] {
            let r = c.post_json("/ingest/calls", body.as_bytes()).unwrap();
            assert_eq!(r.status, 202, "{}", r.text());
        }
    })
    .await
    .unwrap();
    n
}

async fn bus_log(world: &World) -> BusLog {
    let mut s = StoreSettings::new(format!("sqlite://{}/bus.db", world.dir.display()));
    s.max_connections = 2;
    BusLog::new(Store::open(&s).await.unwrap())
}

/// Waits until `topic` holds `n` messages, then reads them all.
async fn read_topic(log: &BusLog, topic: &str, n: u64) -> Vec<LogEntry> {
    let n = i64::try_from(n).unwrap();
    eventually(
        &format!("{n} messages on {topic}"),
        Duration::from_secs(120),
        || async {
            let end = log.end(topic).await.map_err(|e| e.to_string())?;
            if end >= n {
                Ok(())
            } else {
                Err(format!("{end} of {n}"))
            }
        },
    )
    .await;
    let entries = log.read(topic, 0, usize::try_from(n).unwrap() + 100).await.unwrap();
    assert_eq!(entries.len() as i64, n, "{topic}: more messages than records posted");
    entries
}

/// The message with `id`, or a failure naming it.
fn by_id<'a>(values: &'a [Value], id: &str) -> &'a Value {
    values
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no message for {id}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rated_message_matches_rated_v1() {
    let schemas = EventSchemas::load();
    let world = world("schemas_rated").await;
    // The embedded bus publishes rated calls only when asked to.
    let engine = world.start_with(&[("CDRATE_RATING__PUBLISH_RATED", "true")]);
    let n = post_all(&world, engine.addr).await;
    let log = bus_log(&world).await;
    let entries = read_topic(&log, RATED_TOPIC, n).await;
    let rated = schemas.check_all(schemas.rated, RATED_TOPIC, &entries);
    engine.stop();

    // The messages reached every optional and nullable branch, so the
    // schema was checked against each shape, not just the common one.
    let notes: BTreeSet<String> = rated
        .iter()
        .map(|v| v.get("note").map_or("<absent>".into(), |n| n.to_string()))
        .collect();
    let want: BTreeSet<String> = [
        "<absent>",
        "\"b_leg\"",
        "\"inbound_free\"",
        "\"internal\"",
        "\"unanswered_no_route\"",
    ]
    .map(String::from)
    .into();
    assert_eq!(notes, want, "notes seen");
    let count = |f: &dyn Fn(&Value) -> bool| rated.iter().filter(|v| f(v)).count();
    assert!(count(&|v| v["answer_at"].is_null()) > 0, "no unanswered call");
    assert!(count(&|v| v["plan"].is_null()) > 0, "no unpriced call");
    assert!(
        count(&|v| v.get("callee_e164").is_none()) > 0,
        "callee_e164 always present"
    );
    assert!(count(&|v| v["direction"] == "inbound") > 0, "no inbound call");
    let accounts: BTreeSet<&str> = rated.iter().filter_map(|v| v["account_id"].as_str()).collect();
    assert!(accounts.len() >= 10, "only accounts {accounts:?}");
    assert!(by_id(&rated, "x-home")["band"].is_string(), "banded plan without band");
    assert_eq!(by_id(&rated, "x-catch-all")["prefix"], "", "catch-all rate prefix");
    assert_eq!(by_id(&rated, "x-b-leg")["attrs"]["leg"], "b");
    assert_eq!(by_id(&rated, "x-b-leg")["trunk"], "gw-berlin");
    // Instants sent with an offset come out in UTC.
    assert_eq!(by_id(&rated, "x-offset")["start_at"], "2026-11-18T15:00:00Z");

    // The schema can fail: what cdrate must never emit is rejected.
    let priced = rated
        .iter()
        .find(|v| v["plan"].is_string() && v["cost"] != "0")
        .expect("a priced call");
    assert!(schemas.violations(schemas.rated, priced).is_empty());
    // The same decimal as a JSON number (what a float-minded producer would send).
    let cost: Value = serde_json::from_str(priced["cost"].as_str().unwrap()).unwrap();
    assert!(cost.is_number());
    let mutations: Vec<Mutation> = vec![
        (
            "cost as a number",
            Box::new(move |v| v["cost"] = cost.clone()),
            "/cost",
            "Type",
        ),
        (
            "cost in exponent form",
            Box::new(|v| v["cost"] = json!("3e-2")),
            "/cost",
            "Pattern",
        ),
        (
            "unknown field",
            Box::new(|v| v["cost_usd"] = json!("0.03")),
            "",
            "AdditionalProperties",
        ),
        (
            "nullable field left out",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("plan");
            }),
            "",
            "plan",
        ),
        (
            "lower-case currency",
            Box::new(|v| v["currency"] = json!("usd")),
            "/currency",
            "Pattern",
        ),
        ("null note", Box::new(|v| v["note"] = Value::Null), "/note", "Enum"),
        ("unknown note", Box::new(|v| v["note"] = json!("free")), "/note", "Enum"),
        (
            "instant with an offset",
            Box::new(|v| v["rated_at"] = json!("2026-11-18T17:00:00+02:00")),
            "/rated_at",
            "Pattern",
        ),
        (
            "instant that is no date",
            Box::new(|v| v["rated_at"] = json!("2026-13-45T25:61:00Z")),
            "/rated_at",
            "Format",
        ),
        (
            "negative charged seconds",
            Box::new(|v| v["charged_seconds"] = json!(-1)),
            "/charged_seconds",
            "Minimum",
        ),
    ];
    for (case, mutate, location, what) in mutations {
        let mut v = priced.clone();
        mutate(&mut v);
        assert_rejected(&schemas, schemas.rated, case, &v, location, what);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_message_matches_call_v1() {
    let schemas = EventSchemas::load();
    let world = world("schemas_calls").await;
    // Nothing rates, so nothing commits and housekeeping prunes no call.
    let engine = world.start_with(&[("CDRATE_RATING__ENABLED", "false")]);
    let n = post_all(&world, engine.addr).await;
    let log = bus_log(&world).await;
    let entries = read_topic(&log, CALLS_TOPIC, n).await;
    let calls = schemas.check_all(schemas.call, CALLS_TOPIC, &entries);
    assert_eq!(log.end(RATED_TOPIC).await.unwrap(), 0, "rating was disabled");
    engine.stop();

    assert!(calls.iter().all(|v| v["schema"] == "call.v1"));
    let dispositions: BTreeSet<&str> = calls.iter().filter_map(|v| v["disposition"].as_str()).collect();
    assert_eq!(dispositions.len(), 6, "dispositions seen: {dispositions:?}");
    assert!(calls.iter().any(|v| v["answer_at"].is_null()), "no unanswered call");
    assert!(
        calls.iter().any(|v| v["hangup_cause"].is_null()),
        "hangup_cause always set"
    );
    assert_eq!(by_id(&calls, "x-e164")["callee_e164"], "12125550147");
    assert!(by_id(&calls, "x-busy").get("callee_e164").is_none());
    assert_eq!(by_id(&calls, "x-offset")["received_at"], "2026-11-18T15:03:00Z");

    let sample = by_id(&calls, "x-b-leg");
    assert!(schemas.violations(schemas.call, sample).is_empty());
    let mutations: Vec<Mutation> = vec![
        (
            "unknown field",
            Box::new(|v| v["cost"] = json!("0.03")),
            "",
            "AdditionalProperties",
        ),
        (
            "disposition in upper case",
            Box::new(|v| v["disposition"] = json!("ANSWERED")),
            "/disposition",
            "Enum",
        ),
        (
            "unknown source",
            Box::new(|v| v["source"] = json!("asterisk")),
            "/source",
            "Enum",
        ),
        (
            "version 0",
            Box::new(|v| v["version"] = json!(0)),
            "/version",
            "Minimum",
        ),
        (
            "duration as a string",
            Box::new(|v| v["duration_ms"] = json!("125000")),
            "/duration_ms",
            "Type",
        ),
        (
            "answer_at left out",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("answer_at");
            }),
            "",
            "answer_at",
        ),
        (
            "null callee_e164",
            Box::new(|v| v["callee_e164"] = Value::Null),
            "/callee_e164",
            "Type",
        ),
        (
            "non-string attr",
            Box::new(|v| v["attrs"]["leg"] = json!(2)),
            "/attrs/leg",
            "Type",
        ),
        (
            "other schema id",
            Box::new(|v| v["schema"] = json!("call.v2")),
            "/schema",
            "Const",
        ),
    ];
    for (case, mutate, location, what) in mutations {
        let mut v = sample.clone();
        mutate(&mut v);
        assert_rejected(&schemas, schemas.call, case, &v, location, what);
    }
}

/// A `RatedCall` with every optional field set, as serde writes it.
fn full_rated() -> RatedCall {
    RatedCall {
        call: CallRecord {
            schema: "rated.v1".into(),
            id: "fs:4f0c".into(),
            version: 2,
            source: Source::Freeswitch,
            account_key: "acme".into(),
            direction: Direction::Outbound,
            caller: "1001".into(),
            callee: "02071234567".into(),
            callee_e164: Some("442071234567".into()),
            start_at: "2026-11-18T15:00:00Z".parse().unwrap(),
            answer_at: Some("2026-11-18T15:00:05.250Z".parse().unwrap()),
            end_at: "2026-11-18T15:01:06Z".parse().unwrap(),
            duration_ms: 66_000,
            billable_ms: 60_750,
            disposition: Disposition::Answered,
            hangup_cause: Some("NORMAL_CLEARING".into()),
            trunk: Some("gw1".into()),
            attrs: BTreeMap::from([("leg".into(), "a".into())]),
            received_at: "2026-11-18T15:01:07.123456789Z".parse().unwrap(),
        },
        account_id: "acct0".into(),
        plan: Some("business".into()),
        prefix: Some("4420".into()),
        destination: Some("United Kingdom London".into()),
        band: Some("daytime".into()),
        charged_seconds: 66,
        cost: "-0.0165".parse().unwrap(),
        currency: "USD".parse().unwrap(),
        note: Some("internal".into()),
        account_status: Some("suspended".into()),
        tariff_version: 3,
        rating_version: 2,
        rated_at: "2026-11-18T15:01:08Z".parse().unwrap(),
    }
}

/// The call.v1 message a rated call was made from (same fields, its own id).
fn as_call_message(rated: &RatedCall) -> Value {
    let mut call = rated.call.clone();
    call.schema = cdrate_core::call::CALL_SCHEMA.into();
    serde_json::to_value(call).unwrap()
}

fn property_names(doc: &Value) -> BTreeSet<String> {
    doc["properties"].as_object().unwrap().keys().cloned().collect()
}

fn enum_values(doc: &Value, field: &str) -> BTreeSet<String> {
    doc["properties"][field]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{field} has no enum"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn serde_names<T: serde::Serialize>(variants: &[T]) -> BTreeSet<String> {
    variants
        .iter()
        .map(|v| serde_json::to_value(v).unwrap().as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn schemas_list_exactly_the_fields_and_values_serde_writes() {
    let schemas = EventSchemas::load();
    let rated = serde_json::to_value(full_rated()).unwrap();
    let call = as_call_message(&full_rated());
    assert_eq!(schemas.violations(schemas.rated, &rated), vec![]);
    assert_eq!(schemas.violations(schemas.call, &call), vec![]);
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(property_names(&schemas.rated_doc), keys(&rated), "rated.v1 properties");
    assert_eq!(property_names(&schemas.call_doc), keys(&call), "call.v1 properties");

    // With every Option empty, serde omits exactly the optional properties.
    let mut bare = full_rated();
    bare.call.callee_e164 = None;
    bare.call.answer_at = None;
    bare.call.hangup_cause = None;
    bare.call.trunk = None;
    bare.call.attrs.clear();
    (bare.plan, bare.prefix, bare.destination, bare.band, bare.note) = (None, None, None, None, None);
    bare.account_status = None;
    bare.cost = "0".parse().unwrap();
    let rated = serde_json::to_value(&bare).unwrap();
    let call = as_call_message(&bare);
    assert_eq!(schemas.violations(schemas.rated, &rated), vec![]);
    assert_eq!(schemas.violations(schemas.call, &call), vec![]);
    for (doc, value) in [(&schemas.rated_doc, &rated), (&schemas.call_doc, &call)] {
        let required: BTreeSet<String> = doc["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(required, keys(value), "{}: required", doc["$id"]);
    }

    for doc in [&schemas.call_doc, &schemas.rated_doc] {
        use Disposition::*;
        assert_eq!(
            enum_values(doc, "source"),
            serde_names(&[
                Source::Freeswitch,
                Source::Twilio,
                Source::Zadarma,
                Source::Fritzbox,
                Source::Generic
            ])
        );
        assert_eq!(
            enum_values(doc, "direction"),
            serde_names(&[Direction::Outbound, Direction::Inbound, Direction::Internal])
        );
        assert_eq!(
            enum_values(doc, "disposition"),
            serde_names(&[Answered, NoAnswer, Busy, Failed, Cancelled, Missed])
        );
        // Every value the schema allows is one serde reads back.
        for v in enum_values(doc, "disposition") {
            serde_json::from_value::<Disposition>(json!(v)).unwrap();
        }
    }
}
