use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::clock::ManualClock;
use crate::id::SequentialIds;

fn request() -> Envelope {
    let ids = SequentialIds::new();
    let clock = ManualClock::at_fixed_start();
    let mut e = Envelope::command(&ids, &clock, "local.echo", json!({"name": "ada"}));
    e.source_node = Some(NodeId::from("client"));
    e.target_node = Some(NodeId::from("greeter"));
    e.metadata.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
    e.metadata.retry_count = 2;
    e
}

#[test]
fn unknown_fields_survive_a_round_trip() {
    let raw = json!({
        "envelope_id": "0190b3c4-0000-7000-8000-000000000001",
        "operation": "local.echo",
        "payload": {"a": 1},
        "tenant_id": "acme",
        "security_context": {"roles": ["admin"]},
        "metadata": {"request_id": "r-1", "x-custom": [1, 2, 3]}
    });
    let e: Envelope = serde_json::from_value(raw.clone()).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(e.extra.get("tenant_id"), Some(&json!("acme")));
    assert_eq!(e.metadata.extra.get("x-custom"), Some(&json!([1, 2, 3])));
    let back = serde_json::to_value(&e).unwrap_or_default();
    assert_eq!(back["tenant_id"], raw["tenant_id"]);
    assert_eq!(back["security_context"], raw["security_context"]);
    assert_eq!(back["metadata"]["x-custom"], raw["metadata"]["x-custom"]);
    assert_eq!(back["metadata"]["request_id"], "r-1");
}

#[test]
fn envelope_timestamp_is_accepted_as_timestamp() {
    let e = Envelope::from_json(
        br#"{"envelope_id":"0190b3c4-0000-7000-8000-000000000001","envelope_timestamp":"2025-03-01T10:00:00Z"}"#,
    )
    .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(e.timestamp.map(|t| t.to_string()).as_deref(), Some("2025-03-01T10:00:00.000000Z"));
}

#[test]
fn upper_case_categories_are_accepted() {
    let e = Envelope::from_json(br#"{"envelope_id":"0190b3c4-0000-7000-8000-000000000001","category":"EVENT"}"#)
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(e.category, Category::Event);
}

#[test]
fn success_response_follows_the_id_rules() {
    let req = request();
    let ids = SequentialIds::new();
    let _ = ids.next_id(); // skip the id the request used
    let clock = ManualClock::at_fixed_start();
    let resp = req.success_response(&ids, &clock, None, json!({"ok": true}));
    assert_ne!(resp.envelope_id, req.envelope_id);
    assert_eq!(resp.correlation_id, req.correlation_id);
    assert_eq!(resp.causation_id, Some(req.envelope_id));
    assert!(resp.is_response);
    assert_eq!(resp.success, Some(true));
    assert!(resp.error.is_none());
    assert_eq!(resp.category, Category::Event);
    assert_eq!(resp.source_node, Some(NodeId::from("greeter")));
    assert_eq!(resp.target_node, Some(NodeId::from("client")));
    assert_eq!(resp.metadata.traceparent, req.metadata.traceparent);
    assert_eq!(resp.metadata.retry_count, 0);
}

#[test]
fn error_response_carries_code_class_and_context() {
    let req = request();
    let ids = SequentialIds::new();
    let clock = ManualClock::at_fixed_start();
    let err = RuntimeError::new(ErrorCode::HandlerNotFound, "no handler for `local.nope`; available: local");
    let resp = req.error_response(&ids, &clock, None, &err);
    assert_eq!(resp.success, Some(false));
    assert_eq!(resp.causation_id, Some(req.envelope_id));
    let e = resp.error.unwrap_or_else(|| panic!("error missing"));
    assert_eq!(e.code, ErrorCode::HandlerNotFound);
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(!e.retryable);
    assert_eq!(e.operation.as_deref(), Some("local.echo"));
}

#[test]
fn a_request_without_correlation_id_correlates_to_itself() {
    let mut req = request();
    req.correlation_id = None;
    let resp = req.success_response(&SequentialIds::new(), &ManualClock::at_fixed_start(), None, Value::Null);
    assert_eq!(resp.correlation_id, Some(CorrelationId(req.envelope_id.0)));
}

#[test]
fn parse_errors_give_position_and_reason() {
    let err = Envelope::from_json(b"{\n  \"envelope_id\": 42\n}").err().unwrap_or_else(|| panic!("accepted"));
    assert_eq!(err.line, 2);
    assert!(err.reason.contains("invalid type"), "{}", err.reason);
    let err = Envelope::from_json(b"{}").err().unwrap_or_else(|| panic!("accepted"));
    assert!(err.reason.contains("envelope_id"), "{}", err.reason);
}

#[test]
fn partition_key_falls_back_to_correlation_id() {
    let mut req = request();
    assert_eq!(req.partition_key(), req.correlation().to_string());
    req.metadata.partition_key = Some("order-7".into());
    assert_eq!(req.partition_key(), "order-7");
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z0-9 ]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn json_round_trip_is_lossless(
        id in any::<u128>(),
        corr in proptest::option::of(any::<u128>()),
        op in proptest::option::of("[a-z]{1,5}\\.[a-z]{1,5}"),
        payload in arb_value(),
        extra_key in "x_[a-z]{1,6}",
        extra in arb_value(),
        tags in prop::collection::vec("[a-z]{1,4}", 0..3),
        retry in 0u32..5,
        is_response in any::<bool>(),
    ) {
        let mut e = Envelope::command(&SequentialIds::new(), &ManualClock::at_fixed_start(), "x.y", payload);
        e.envelope_id = EnvelopeId(Uuid::from_u128(id));
        e.correlation_id = corr.map(|c| CorrelationId(Uuid::from_u128(c)));
        e.operation = op.map(Operation::new);
        e.metadata.tags = tags;
        e.metadata.retry_count = retry;
        e.is_response = is_response;
        e.extra.insert(extra_key, extra);
        let bytes = e.to_json();
        let back = Envelope::from_json(&bytes);
        prop_assert_eq!(back, Ok(e));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Envelope::from_json(&bytes);
    }

    #[test]
    fn arbitrary_json_objects_never_panic_the_parser(v in arb_value()) {
        let _ = Envelope::from_json(&serde_json::to_vec(&v).unwrap_or_default());
    }
}

#[test]
fn a_field_given_twice_is_an_error() {
    let err = Envelope::from_json(br#"{"envelope_id":"0190b3c4-0000-7000-8000-000000000001","timestamp":"2025-03-01T10:00:00Z","envelope_timestamp":"2025-03-01T10:00:00Z"}"#)
        .err()
        .map(|e| e.reason)
        .unwrap_or_default();
    assert!(err.contains("duplicate field `timestamp`"), "{err}");
}

#[test]
fn escaped_unknown_keys_are_preserved() {
    let e = Envelope::from_json(
        br#"{"envelope_id":"0190b3c4-0000-7000-8000-000000000001","x\"y":1,"metadata":{"a\\b":2}}"#,
    )
    .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(e.extra.get("x\"y"), Some(&json!(1)));
    assert_eq!(e.metadata.extra.get("a\\b"), Some(&json!(2)));
}
