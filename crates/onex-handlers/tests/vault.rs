//! The vault handler against a real OpenBao dev server (started by `scripts/services.sh`).
//!
//! Address from `ONEX_TEST_VAULT_ADDR` (default `http://127.0.0.1:8200`), root token `root`
//! (`ONEX_TEST_VAULT_TOKEN`). A missing server fails these tests; they never skip. Each test
//! works under its own KV path, policy and role names.
#![allow(clippy::expect_used, reason = "test helpers fail the test on a broken setup")]

use std::sync::Arc;
use std::time::Duration;

use onex_core::{CorrelationId, EnvelopeId, ErrorClass, ManualClock, Operation};
use onex_handlers::vault::VaultAuth;
use onex_handlers::{CallContext, Handler, HandlerError, VaultHandler, VaultHandlerConfig};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

fn addr() -> String {
    std::env::var("ONEX_TEST_VAULT_ADDR").unwrap_or_else(|_| "http://127.0.0.1:8200".into())
}

fn root_token() -> String {
    std::env::var("ONEX_TEST_VAULT_TOKEN").unwrap_or_else(|_| "root".into())
}

fn handler_with_token(token: &str) -> VaultHandler {
    VaultHandler::new(&VaultHandlerConfig::with_token(addr(), SecretString::from(token.to_owned())))
        .expect("valid vault config")
}

fn ctx() -> CallContext {
    CallContext {
        envelope_id: EnvelopeId(Uuid::from_u128(9)),
        correlation_id: CorrelationId(Uuid::from_u128(9)),
        attempt: 1,
        deadline: None,
    }
}

async fn call(h: &VaultHandler, op: &str, payload: Value) -> Result<Value, HandlerError> {
    h.execute(&ctx(), &Operation::from(op), &payload).await
}

/// A request to Vault's API as root, for test set-up.
async fn admin(method: &str, path: &str, body: Option<Value>) -> Value {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = onex_handlers::http::client_builder()
        .build()
        .expect("client")
        .request(method, format!("{}/v1/{path}", addr()))
        .header("X-Vault-Token", root_token());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("OpenBao is running (scripts/services.sh)");
    resp.json().await.unwrap_or(Value::Null)
}

/// A token whose only policy is `policy` (HCL), for permission tests.
async fn token_with_policy(name: &str, policy: &str) -> String {
    admin("PUT", &format!("sys/policies/acl/{name}"), Some(json!({"policy": policy}))).await;
    let out = admin("POST", "auth/token/create", Some(json!({"policies": [name], "ttl": "10m"}))).await;
    out["auth"]["client_token"].as_str().expect("token created").to_owned()
}

#[tokio::test]
async fn set_get_list_delete_round_trip() {
    let h = handler_with_token(&root_token());
    let base = "onex-tests/round-trip";
    let v1 =
        call(&h, "vault.set", json!({"path": format!("{base}/db"), "data": {"user": "app", "password": "pw1"}})).await;
    let v1 = v1.expect("set")["version"].as_u64().expect("version");
    let v2 =
        call(&h, "vault.set", json!({"path": format!("{base}/db"), "data": {"user": "app", "password": "pw2"}})).await;
    assert_eq!(v2.expect("set")["version"].as_u64(), Some(v1 + 1));
    call(&h, "vault.set", json!({"path": format!("{base}/nested/api"), "data": {"key": "k"}})).await.expect("set");

    let got = call(&h, "vault.get", json!({"path": format!("{base}/db")})).await.expect("get");
    assert_eq!(got, json!({"data": {"user": "app", "password": "pw2"}, "version": v1 + 1}));
    let old = call(&h, "vault.get", json!({"path": format!("{base}/db"), "version": v1})).await.expect("get v1");
    assert_eq!(old["data"]["password"], json!("pw1"));

    let listed = call(&h, "vault.list", json!({"path": base})).await.expect("list");
    assert_eq!(listed, json!({"keys": ["db", "nested/"]}));

    assert_eq!(call(&h, "vault.delete", json!({"path": format!("{base}/db")})).await, Ok(json!({"deleted": true})));
    let err = call(&h, "vault.get", json!({"path": format!("{base}/db")})).await.expect_err("latest version deleted");
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");

    for path in [format!("{base}/db"), format!("{base}/nested/api")] {
        call(&h, "vault.delete", json!({"path": path, "all_versions": true})).await.expect("delete all");
    }
    assert_eq!(call(&h, "vault.list", json!({"path": base})).await, Ok(json!({"keys": []})));
}

#[tokio::test]
async fn a_missing_secret_is_permanent_and_names_path_and_mount() {
    let h = handler_with_token(&root_token());
    let err = call(&h, "vault.get", json!({"path": "onex-tests/never-written"})).await.expect_err("missing");
    assert_eq!(err.class(), ErrorClass::Permanent);
    let msg = err.to_string();
    assert!(
        msg.contains("`onex-tests/never-written` not found in mount `secret`") && msg.contains("KV version 2"),
        "{msg}"
    );
}

#[tokio::test]
async fn permission_denied_is_permanent_and_says_which_capability_to_grant() {
    let token = token_with_policy(
        "onex-test-read-only",
        r#"path "secret/data/onex-tests/readable/*" { capabilities = ["read"] }"#,
    )
    .await;
    let h = handler_with_token(&token);
    let err =
        call(&h, "vault.set", json!({"path": "onex-tests/readable/x", "data": {"a": 1}})).await.expect_err("denied");
    assert_eq!(err.class(), ErrorClass::Permanent);
    let msg = err.to_string();
    assert!(msg.contains("grants `create/update` on `secret/data/onex-tests/readable/x`"), "{msg}");
    assert!(!msg.contains(&token), "the token never appears in errors");
}

#[tokio::test]
async fn check_and_set_mismatch_is_a_conflict() {
    let h = handler_with_token(&root_token());
    let path = "onex-tests/cas";
    call(&h, "vault.delete", json!({"path": path, "all_versions": true})).await.expect("clean");
    call(&h, "vault.set", json!({"path": path, "data": {"n": 1}, "cas": 0})).await.expect("first write");
    let err = call(&h, "vault.set", json!({"path": path, "data": {"n": 2}, "cas": 0})).await.expect_err("stale cas");
    assert_eq!(err.class(), ErrorClass::Conflict, "{err}");
}

#[tokio::test]
async fn approle_login_reads_secrets_and_shutdown_revokes_the_login_token() {
    // Enabling twice answers 400 "path is already in use", which is fine.
    admin("POST", "sys/auth/approle", Some(json!({"type": "approle"}))).await;
    admin("PUT", "sys/policies/acl/onex-test-approle", Some(json!({"policy": r#"path "secret/data/onex-tests/approle/*" { capabilities = ["read", "create", "update"] }"#}))).await;
    admin(
        "POST",
        "auth/approle/role/onex-test",
        Some(json!({"token_policies": ["onex-test-approle"], "token_ttl": "5m"})),
    )
    .await;
    let role_id = admin("GET", "auth/approle/role/onex-test/role-id", None).await["data"]["role_id"]
        .as_str()
        .expect("role id")
        .to_owned();
    let secret_id = admin("POST", "auth/approle/role/onex-test/secret-id", None).await["data"]["secret_id"]
        .as_str()
        .expect("secret id")
        .to_owned();
    let mut cfg = VaultHandlerConfig::with_token(addr(), SecretString::from(String::new()));
    cfg.auth = VaultAuth::Approle {
        role_id,
        secret_id: SecretString::from(secret_id),
        mount: onex_handlers::vault::default_approle_mount(),
    };
    let h = VaultHandler::new(&cfg).expect("valid config");
    call(&h, "vault.set", json!({"path": "onex-tests/approle/x", "data": {"k": "v"}}))
        .await
        .expect("write via approle");
    let got = call(&h, "vault.get", json!({"path": "onex-tests/approle/x"})).await.expect("read via approle");
    assert_eq!(got["data"], json!({"k": "v"}));
    assert!(h.health().await.healthy);
    h.shutdown().await;
    let err = call(&h, "vault.get", json!({"path": "onex-tests/approle/x"})).await;
    // After revocation the client logs in again on demand; the call still works.
    assert!(err.is_ok(), "{err:?}");
    h.client().revoke_login_token().await;
}

#[tokio::test]
async fn a_token_two_thirds_through_its_ttl_is_renewed_before_use() {
    let out = admin(
        "POST",
        "auth/token/create",
        Some(json!({"policies": ["default", "onex-test-renew"], "ttl": "60s", "renewable": true})),
    )
    .await;
    admin(
        "PUT",
        "sys/policies/acl/onex-test-renew",
        Some(
            json!({"policy": r#"path "secret/data/onex-tests/renew" { capabilities = ["read", "create", "update"] }"#}),
        ),
    )
    .await;
    let token = out["auth"]["client_token"].as_str().expect("token").to_owned();
    let accessor = out["auth"]["accessor"].as_str().expect("accessor").to_owned();
    let clock = Arc::new(ManualClock::at_fixed_start());
    let h = VaultHandler::with_clock(&VaultHandlerConfig::with_token(addr(), SecretString::from(token)), clock.clone())
        .expect("valid config");

    call(&h, "vault.set", json!({"path": "onex-tests/renew", "data": {"a": 1}}))
        .await
        .expect("first call looks the token up");
    let before = admin("POST", "auth/token/lookup-accessor", Some(json!({"accessor": accessor}))).await;
    assert!(before["data"]["last_renewal_time"].is_null(), "not renewed yet: {before}");

    clock.advance(Duration::from_secs(41));
    call(&h, "vault.get", json!({"path": "onex-tests/renew"})).await.expect("renewed, then read");
    let after = admin("POST", "auth/token/lookup-accessor", Some(json!({"accessor": accessor}))).await;
    assert!(!after["data"]["last_renewal_time"].is_null(), "renewed: {after}");
}

#[tokio::test]
async fn health_checks_the_real_server_and_the_token() {
    assert!(handler_with_token(&root_token()).health().await.healthy);
    let bad = handler_with_token("not-a-token").health().await;
    assert!(!bad.healthy && bad.detail.contains("denied"), "{}", bad.detail);
    assert!(!bad.detail.contains("not-a-token"));
}
