//! Secrets end to end against real OpenBao and PostgreSQL (started by `scripts/services.sh`):
//! a `secret_ref` resolved from Vault into a db handler config, and a known secret that must
//! appear nowhere in captured logs, error envelopes or `Debug` output.
//!
//! Addresses: `ONEX_TEST_VAULT_ADDR` (default `http://127.0.0.1:8200`, token `root` or
//! `ONEX_TEST_VAULT_TOKEN`), `ONEX_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! A missing service fails the tests; they never skip. Each test has its own KV path.
#![allow(clippy::expect_used, reason = "test helpers fail the test on a broken setup")]

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use onex_core::contract::{HandlerBinding, HandlerType};
use onex_core::{CorrelationId, EnvelopeId, Operation};
use onex_handlers::{
    CallContext, DbHandler, Handler, HandlerError, TokioClock, VaultClient, VaultHandler, VaultHandlerConfig,
};
use onex_runtime::secrets::{EnvSource, FileSource};
use onex_runtime::{HandlerConfigResolver, SecretResolver};
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use uuid::Uuid;

fn vault_addr() -> String {
    std::env::var("ONEX_TEST_VAULT_ADDR").unwrap_or_else(|_| "http://127.0.0.1:8200".into())
}

fn vault_token() -> String {
    std::env::var("ONEX_TEST_VAULT_TOKEN").unwrap_or_else(|_| "root".into())
}

fn pg_url() -> String {
    std::env::var("ONEX_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn vault_config() -> VaultHandlerConfig {
    VaultHandlerConfig::with_token(vault_addr(), SecretString::from(vault_token()))
}

fn resolver(env: &[(&str, &str)]) -> SecretResolver {
    let client = VaultClient::new(&vault_config(), Arc::new(TokioClock::new())).expect("valid vault config");
    SecretResolver::new(
        Some(client),
        EnvSource::from_pairs(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))),
        FileSource::default(),
    )
}

fn ctx() -> CallContext {
    CallContext {
        envelope_id: EnvelopeId(Uuid::from_u128(3)),
        correlation_id: CorrelationId(Uuid::from_u128(3)),
        attempt: 1,
        deadline: None,
    }
}

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Writes `data` at `path` in the `secret` mount through the vault handler.
async fn put_secret(path: &str, data: Value) {
    let h = VaultHandler::new(&vault_config()).expect("valid vault config");
    h.execute(&ctx(), &Operation::from("vault.set"), &json!({"path": path, "data": data}))
        .await
        .expect("OpenBao is running (scripts/services.sh)");
}

fn db_binding(name: &str, config: Value) -> HandlerBinding {
    HandlerBinding { config: map(config), ..HandlerBinding::new(HandlerType::Db, name) }
}

#[tokio::test]
async fn a_vault_secret_ref_resolves_into_a_working_db_handler() {
    captured_logs();
    put_secret("onex-tests/secrets-db", json!({"url": pg_url(), "password": "unused-with-trust-auth"})).await;
    let secrets = resolver(&[("ONEX_HANDLER_ORDERS_DB_POOL_SIZE", "3")]);
    let binding = db_binding(
        "orders-db",
        json!({
            "url": {"secret_ref": "vault:secret/onex-tests/secrets-db#url"},
            "password": {"secret_ref": "vault:secret/onex-tests/secrets-db#password"},
            "pool_size": 10
        }),
    );
    let configs = HandlerConfigResolver::with_env(
        &secrets,
        EnvSource::from_pairs([("ONEX_HANDLER_ORDERS_DB_POOL_SIZE".to_owned(), "3".to_owned())]),
    );
    let resolved = configs.resolve(Path::new("runtime.yaml"), 0, &binding).await.expect("config resolves");
    assert_eq!(resolved.as_map()["pool_size"], json!(3), "the environment override wins");
    let db = DbHandler::from_config(resolved.as_map()).expect("db handler builds");
    let out = db.execute(&ctx(), &Operation::from("db.query"), &json!({"sql": "select 1::int4 as one"})).await;
    assert_eq!(out.map(|v| v["rows"].clone()), Ok(json!([{"one": 1}])));
    db.shutdown().await;
}

#[tokio::test]
async fn config_problems_are_diagnostics_at_the_field_or_the_variable() {
    captured_logs();
    let secrets = resolver(&[]);
    let configs = HandlerConfigResolver::with_env(
        &secrets,
        EnvSource::from_pairs([("ONEX_HANDLER_DB_POOL_SIZ".to_owned(), "3".to_owned())]),
    );
    let binding = db_binding(
        "db",
        json!({"url": pg_url(), "password": {"secret_ref": "vault:secret/onex-tests/never-written#password"}}),
    );
    let diags = configs.resolve(Path::new("runtime.yaml"), 2, &binding).await.expect_err("the secret is missing");
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].path, "runtime.handlers[2].config.password");
    assert!(diags[0].message.contains("vault:secret/onex-tests/never-written#password"), "{}", diags[0].message);

    let binding = db_binding("db", json!({"url": pg_url()}));
    let diags = configs.resolve(Path::new("runtime.yaml"), 2, &binding).await.expect_err("typo in the variable");
    assert_eq!(diags[0].path, "runtime.handlers[2].config.pool_siz");
    assert!(diags[0].message.contains("set by environment variable ONEX_HANDLER_DB_POOL_SIZ"), "{}", diags[0].message);
    assert!(diags[0].hint.as_deref().unwrap_or_default().contains("did you mean `pool_size`"));
}

/// The error envelope the runtime publishes for `err`, as JSON (built the way the host builds it).
fn error_envelope(err: &HandlerError, handler_type: &str, operation: &str) -> String {
    let e = err.to_runtime_error(handler_type, operation);
    let request = onex_core::Envelope::command(
        &onex_core::SequentialIds::new(),
        &onex_core::ManualClock::at_fixed_start(),
        operation,
        serde_json::Value::Null,
    );
    let response =
        request.error_response(&onex_core::SequentialIds::new(), &onex_core::ManualClock::at_fixed_start(), None, &e);
    String::from_utf8(response.to_json()).expect("JSON is UTF-8")
}

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary, at every level, as JSON. Installed once as the global
/// subscriber: a thread-local one would miss call sites whose interest another test's thread
/// had already cached as "never".
fn captured_logs() -> Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        logs
    })
    .clone()
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

#[tokio::test]
async fn a_known_secret_appears_in_no_log_error_envelope_or_debug_output() {
    const SECRET: &str = "Kn0wn-S3cret-7f9c2e";
    let logs = captured_logs();

    put_secret("onex-tests/leak-check", json!({"password": SECRET})).await;
    let secrets = resolver(&[("LEAK_CHECK_TOKEN", SECRET)]);
    let configs = HandlerConfigResolver::with_env(&secrets, EnvSource::from_pairs([]));
    let mut outputs: Vec<String> = Vec::new();

    // A db handler whose password is the secret: one call that works, two that fail.
    let binding = db_binding(
        "db",
        json!({"url": "postgres://onex_no_such_role@127.0.0.1:5432/test",
               "password": {"secret_ref": "vault:secret/onex-tests/leak-check#password"}}),
    );
    let resolved = configs.resolve(Path::new("runtime.yaml"), 0, &binding).await.expect("config resolves");
    outputs.push(format!("{resolved:?}"));
    let db = DbHandler::from_config(resolved.as_map()).expect("db handler builds");
    outputs.push(format!("{db:?}"));
    let err = db
        .execute(&ctx(), &Operation::from("db.query"), &json!({"sql": "select 1"}))
        .await
        .expect_err("the role does not exist");
    let envelope_error = error_envelope(&err, "db", "db.query");
    assert!(envelope_error.contains("onex_no_such_role"), "the error is about the role: {envelope_error}");
    outputs.push(envelope_error);
    outputs.push(db.health().await.detail);

    // The same secret in a config where it does not fit: a type error must not quote it.
    let binding = db_binding(
        "db",
        json!({"url": pg_url(), "application_name": {"secret_ref": "env:LEAK_CHECK_TOKEN"}, "pool_size": {"secret_ref": "env:LEAK_CHECK_TOKEN"}}),
    );
    let diags = configs.resolve(Path::new("runtime.yaml"), 0, &binding).await.expect_err("pool_size is not a number");
    outputs.extend(diags.iter().map(ToString::to_string));
    outputs.extend(diags.iter().filter_map(|d| d.hint.clone()));

    // A vault handler with the secret as its token: denied, and the error says so without it.
    let vault = VaultHandler::new(&VaultHandlerConfig::with_token(vault_addr(), SecretString::from(SECRET.to_owned())))
        .expect("valid config");
    outputs.push(format!("{vault:?}"));
    let err = vault
        .execute(&ctx(), &Operation::from("vault.get"), &json!({"path": "onex-tests/leak-check"}))
        .await
        .expect_err("not a real token");
    outputs.push(error_envelope(&err, "vault", "vault.get"));
    outputs.push(vault.health().await.detail);
    vault.shutdown().await;
    db.shutdown().await;

    let logged = logs.text();
    assert!(logged.contains("Resolved secret reference."), "the resolver logged: {logged}");
    outputs.push(logged);
    for (i, out) in outputs.iter().enumerate() {
        assert!(!out.contains(SECRET), "output {i} leaks the secret: {out}");
    }
}
