//! Unit tests of the http handler's config, payload checks and response classification.
//! Behaviour over real sockets is in `tests/http.rs`.

use std::time::Duration;

use onex_core::contract::{MapSources, load_runtime_contract};
use onex_core::{ErrorClass, Timestamp};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use url::Url;

use super::config::HttpHandlerConfig;
use super::handler::json_content_type;
use super::request::{HttpRequest, Target};
use super::response::{class_of, retry_after};
use crate::error::HandlerError;

fn map(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// The `config` map of the first binding of a runtime contract, as the loader builds it.
fn binding_config(handler_yaml: &str) -> Map<String, Value> {
    let yaml = format!(
        "runtime:\n  name: t\n  event_bus:\n    kind: memory\n    config:\n      topics: {{input: onex.acme.t.cmd.v1, output: onex.acme.t.evt.v1}}\n  handlers:\n{handler_yaml}"
    );
    let sources = MapSources::new().with_file("onex.yaml", &yaml);
    let contract = load_runtime_contract("onex.yaml".as_ref(), &sources).unwrap().contract;
    contract.handlers[0].config.clone()
}

fn target(base: Option<&str>, allow_any_host: bool) -> Target {
    Target { base_url: base.map(|b| Url::parse(b).unwrap()), allow_any_host }
}

fn build(payload: Value, target: &Target) -> Result<HttpRequest, HandlerError> {
    HttpRequest::from_payload(Method::POST, &payload, target, 1024)
}

fn message(e: HandlerError) -> String {
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
    e.to_string()
}

// --- config ---

#[test]
fn config_from_a_contract_yaml_snippet_parses_with_defaults() {
    let config = binding_config(
        "    - type: http\n      config:\n        base_url: https://api.example.com/v1/\n        max_response_bytes: 1048576\n",
    );
    let c = HttpHandlerConfig::from_map(&config).unwrap();
    assert_eq!(c.base_url.as_deref(), Some("https://api.example.com/v1/"));
    assert_eq!(c.max_response_bytes.get(), 1_048_576);
    assert_eq!(c.max_request_bytes.get(), 10 * 1024 * 1024);
    assert_eq!(c.connect_timeout_ms, 10_000);
    assert_eq!(c.max_redirects, 5);
    assert_eq!(c.user_agent, concat!("onex/", env!("CARGO_PKG_VERSION")));
}

#[test]
fn an_empty_config_is_the_default() {
    assert_eq!(HttpHandlerConfig::from_map(&Map::new()).unwrap(), HttpHandlerConfig::default());
}

#[test]
fn config_typos_and_bad_values_are_all_reported_with_their_fields() {
    let config = binding_config(
        "    - type: http\n      config:\n        base_ur: https://x/\n        max_response_bytes: lots\n        connect_timeout_ms: 0\n",
    );
    let problems = HttpHandlerConfig::from_map(&config).unwrap_err();
    assert!(
        problems.iter().any(|p| p.starts_with("`base_ur`: unknown field") && p.contains("`base_url`")),
        "{problems:?}"
    );
    assert!(problems.iter().any(|p| p.starts_with("`max_response_bytes`")), "{problems:?}");
    // Type errors come first; semantic checks run on a config that parsed.
    let problems =
        HttpHandlerConfig::from_map(&map(json!({"connect_timeout_ms": 0, "base_url": "not a url"}))).unwrap_err();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("`base_url`: `not a url` is not an absolute URL")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("`connect_timeout_ms`")), "{problems:?}");
}

#[test]
fn a_zero_size_limit_is_refused_by_its_type() {
    let problems = HttpHandlerConfig::from_map(&map(json!({"max_request_bytes": 0}))).unwrap_err();
    assert!(problems[0].starts_with("`max_request_bytes`"), "{problems:?}");
}

#[test]
fn debug_output_never_shows_header_values() {
    let c = HttpHandlerConfig::from_map(&map(json!({"default_headers": {"Authorization": "Bearer s3cr3t"}}))).unwrap();
    let shown = format!("{c:?}");
    assert!(shown.contains("Authorization") && !shown.contains("s3cr3t"), "{shown}");
    let handler = super::HttpHandler::new(c).unwrap();
    let shown = format!("{handler:?}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
}

#[test]
fn invalid_header_values_are_refused_without_echoing_them() {
    let problems =
        HttpHandlerConfig::from_map(&map(json!({"default_headers": {"X-Token": "line\nbreak-s3cr3t"}}))).unwrap_err();
    assert!(problems[0].contains("`X-Token`") && !problems[0].contains("s3cr3t"), "{problems:?}");
}

// --- payload ---

#[test]
fn relative_urls_resolve_against_base_url() {
    let r = build(json!({"url": "invoices/42"}), &target(Some("https://api.example.com/v1/"), false)).unwrap();
    assert_eq!(r.url.as_str(), "https://api.example.com/v1/invoices/42");
}

#[test]
fn absolute_urls_to_another_host_are_refused_when_base_url_is_set() {
    let e = build(
        json!({"url": "http://169.254.169.254/latest/meta-data"}),
        &target(Some("https://api.example.com/"), false),
    )
    .unwrap_err();
    assert!(message(e).contains("outside the origin of base_url"));
}

#[test]
fn allow_any_host_permits_other_hosts() {
    let r =
        build(json!({"url": "https://other.example.com/x"}), &target(Some("https://api.example.com/"), true)).unwrap();
    assert_eq!(r.url.host_str(), Some("other.example.com"));
}

#[test]
fn without_base_url_urls_must_be_absolute_http() {
    let e = build(json!({"url": "invoices/42"}), &target(None, false)).unwrap_err();
    assert!(message(e).contains("must be absolute"));
    let e = build(json!({"url": "file:///etc/passwd"}), &target(None, false)).unwrap_err();
    assert!(message(e).contains("scheme `file`"));
}

#[test]
fn query_values_are_encoded_and_arrays_repeat_the_key() {
    let r = build(
        json!({"url": "http://h/s", "query": {"q": "a b&c", "n": 3, "tag": ["x", "y"], "ok": true}}),
        &target(None, false),
    )
    .unwrap();
    assert_eq!(r.url.query(), Some("n=3&ok=true&q=a+b%26c&tag=x&tag=y"));
}

#[test]
fn json_bodies_are_encoded_with_a_json_content_type() {
    let r = build(json!({"url": "http://h/", "json": {"a": 1}}), &target(None, false)).unwrap();
    assert_eq!(r.body.as_deref(), Some(&b"{\"a\":1}"[..]));
    assert_eq!(r.headers.get("content-type").unwrap(), "application/json");
}

#[test]
fn json_and_body_together_are_refused() {
    let e = build(json!({"url": "http://h/", "json": 1, "body": "x"}), &target(None, false)).unwrap_err();
    assert!(message(e).contains("not both"));
}

#[test]
fn unknown_payload_keys_are_refused() {
    let e = build(json!({"url": "http://h/", "jsn": 1}), &target(None, false)).unwrap_err();
    assert!(message(e).contains("unknown field `jsn`"));
}

#[test]
fn a_request_body_over_the_limit_is_refused_before_sending() {
    let e = build(json!({"url": "http://h/", "body": "x".repeat(1025)}), &target(None, false)).unwrap_err();
    assert!(message(e).contains("1025 bytes, over max_request_bytes (1024)"));
}

#[test]
fn unparsable_urls_with_credentials_are_not_echoed() {
    let e = build(json!({"url": "http://user:s3cr3t@[bad"}), &target(None, false)).unwrap_err();
    assert!(!message(e).contains("s3cr3t"));
}

// --- response ---

#[test]
fn statuses_map_to_error_classes() {
    let cases = [
        (200, None),
        (204, None),
        (304, None),
        (400, Some(ErrorClass::Permanent)),
        (401, Some(ErrorClass::Permanent)),
        (404, Some(ErrorClass::Permanent)),
        (408, Some(ErrorClass::Transient)),
        (409, Some(ErrorClass::Conflict)),
        (412, Some(ErrorClass::Conflict)),
        (429, Some(ErrorClass::Transient)),
        (500, Some(ErrorClass::Transient)),
        (503, Some(ErrorClass::Transient)),
    ];
    for (code, class) in cases {
        assert_eq!(class_of(StatusCode::from_u16(code).unwrap()), class, "{code}");
    }
}

fn with_retry_after(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
    h
}

#[test]
fn retry_after_in_seconds_is_parsed() {
    assert_eq!(retry_after(&with_retry_after("120"), Timestamp::UNIX_EPOCH), Some(Duration::from_secs(120)));
}

#[test]
fn retry_after_as_an_http_date_is_relative_to_the_clock() {
    // 2015-10-21T07:28:00Z, ten seconds before the date in the header.
    let now = Timestamp::from_unix_millis(1_445_412_470_000).unwrap();
    let h = with_retry_after("Wed, 21 Oct 2015 07:28:00 GMT");
    assert_eq!(retry_after(&h, now), Some(Duration::from_secs(10)));
    let later = now.saturating_add(Duration::from_secs(60));
    assert_eq!(retry_after(&h, later), Some(Duration::ZERO), "a date in the past means now");
}

#[test]
fn an_unparsable_retry_after_is_ignored() {
    assert_eq!(retry_after(&with_retry_after("soon"), Timestamp::UNIX_EPOCH), None);
    assert_eq!(retry_after(&HeaderMap::new(), Timestamp::UNIX_EPOCH), None);
}

#[test]
fn json_content_types_are_recognised() {
    for yes in ["application/json", "application/json; charset=utf-8", "application/problem+json", "Application/JSON"] {
        assert!(json_content_type(yes), "{yes}");
    }
    for no in ["text/plain", "application/jsonl", "text/html; charset=json"] {
        assert!(!json_content_type(no), "{no}");
    }
}
