//! Unit tests of the consul handler's config, payloads and URL building.
//! Behaviour against the Consul test double is in `tests/consul.rs`.

use serde_json::{Map, Value, json};

use super::api::{HealthPayload, RegisterPayload, aggregate_status};
use super::config::ConsulHandlerConfig;
use super::handler::{ConsulHandler, endpoint_for, parse_payload};
use crate::error::HandlerError;

fn map(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn handler(config: Value) -> ConsulHandler {
    ConsulHandler::from_config(&map(config)).unwrap()
}

#[test]
fn an_empty_config_talks_to_the_local_agent() {
    let c = ConsulHandlerConfig::from_map(&Map::new()).unwrap();
    assert_eq!(c, ConsulHandlerConfig::default());
    assert_eq!(c.address, "http://127.0.0.1:8500");
    assert_eq!((c.token, c.datacenter, c.connect_timeout_ms), (None, None, 5000));
}

#[test]
fn config_typos_and_bad_values_are_all_reported_with_their_fields() {
    let problems = ConsulHandlerConfig::from_map(&map(json!({"adress": "x", "token": 5}))).unwrap_err();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("`adress`: unknown field") && p.contains("`address`")));
    let problems =
        ConsulHandlerConfig::from_map(&map(json!({"address": "consul:8500", "datacenter": ""}))).unwrap_err();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("`address`")), "{problems:?}");
}

#[test]
fn debug_output_redacts_the_token() {
    let h = handler(json!({"token": "b1gs3cr3t"}));
    let shown = format!("{h:?}");
    assert!(shown.contains("<redacted>") && !shown.contains("b1gs3cr3t"), "{shown}");
}

#[test]
fn path_segments_are_percent_encoded() {
    let h = handler(json!({"address": "http://127.0.0.1:8500"}));
    let url = endpoint_for(&h, &["agent", "service", "deregister", "web/1 a"], false);
    assert_eq!(url.as_str(), "http://127.0.0.1:8500/v1/agent/service/deregister/web%2F1%20a");
}

#[test]
fn the_datacenter_is_added_to_catalog_queries() {
    let h = handler(json!({"datacenter": "eu-1"}));
    assert_eq!(endpoint_for(&h, &["catalog", "services"], true).query(), Some("dc=eu-1"));
    assert_eq!(endpoint_for(&h, &["agent", "service", "register"], false).query(), None);
}

#[test]
fn register_payloads_are_strict() {
    let e = parse_payload::<RegisterPayload>("consul.register", &json!({"name": "web", "prot": 80})).unwrap_err();
    assert!(matches!(e, HandlerError::Failed { .. }) && e.to_string().contains("unknown field `prot`"), "{e}");
    let e = parse_payload::<RegisterPayload>("consul.register", &json!({"port": 80})).unwrap_err();
    assert!(e.to_string().contains("missing field `name`"), "{e}");
}

#[test]
fn a_null_payload_is_an_empty_one() {
    let e = parse_payload::<HealthPayload>("consul.health", &Value::Null).unwrap_err();
    assert!(e.to_string().contains("missing field `name`"), "{e}");
}

#[test]
fn aggregate_status_is_the_worst_check() {
    assert_eq!(aggregate_status(&[]), "passing");
    assert_eq!(aggregate_status(&["passing", "warning"]), "warning");
    assert_eq!(aggregate_status(&["warning", "critical", "passing"]), "critical");
    assert_eq!(aggregate_status(&["maintenance"]), "critical");
}
