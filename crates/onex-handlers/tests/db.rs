//! The db handler against a real PostgreSQL (started by `scripts/services.sh`).
//!
//! Address from `ONEX_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! A missing server fails these tests; they never skip. Each test uses its own table.
#![allow(clippy::expect_used, reason = "test helpers fail the test on a broken setup")]

use std::sync::Arc;
use std::time::Duration;

use onex_core::{Clock, CorrelationId, EnvelopeId, ErrorClass, Operation, SystemClock};
use onex_handlers::{CallContext, DbHandler, DbHandlerConfig, Handler, HandlerError};
use serde_json::{Value, json};
use uuid::Uuid;

fn pg_url() -> String {
    std::env::var("ONEX_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn handler(pool_size: usize) -> Arc<DbHandler> {
    let mut cfg = DbHandlerConfig::new(pg_url());
    cfg.pool_size = std::num::NonZeroUsize::new(pool_size).expect("pool size is not zero");
    Arc::new(DbHandler::new(&cfg).expect("valid db config"))
}

fn ctx() -> CallContext {
    CallContext {
        envelope_id: EnvelopeId(Uuid::from_u128(7)),
        correlation_id: CorrelationId(Uuid::from_u128(7)),
        attempt: 1,
        deadline: None,
    }
}

async fn call(h: &DbHandler, op: &str, payload: Value) -> Result<Value, HandlerError> {
    h.execute(&ctx(), &Operation::from(op), &payload).await
}

/// Creates (or recreates) this test's own table.
async fn fresh_table(h: &DbHandler, table: &str, columns: &str) {
    call(h, "db.execute", json!({"sql": format!("drop table if exists {table}")})).await.expect("drop table");
    call(h, "db.execute", json!({"sql": format!("create table {table} ({columns})")})).await.expect("create table");
}

/// A plain client beside the handler, for holding locks.
async fn raw_client() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls).await.expect("postgres is running");
    tokio::spawn(conn);
    client
}

#[tokio::test]
async fn query_returns_columns_rows_and_row_count_with_typed_values() {
    let h = handler(2);
    let out = call(
        &h,
        "db.query",
        json!({"sql": "select 7::int4 as i, 9000000000::int8 as big, 'ada'::text as name, true as ok, \
                       '{\"a\": [1]}'::jsonb as doc, 12.50::numeric as price, 1.5::float8 as f, \
                       '2025-01-02T03:04:05Z'::timestamptz as at, '67e55044-10b1-426f-9247-bb680e5fe0c8'::uuid as id, \
                       '\\x00ff'::bytea as raw, null::text as missing, $1::int4 as p",
               "params": [42]}),
    )
    .await
    .expect("query succeeds");
    assert_eq!(out["row_count"], json!(1));
    assert_eq!(
        out["columns"],
        json!(["i", "big", "name", "ok", "doc", "price", "f", "at", "id", "raw", "missing", "p"])
    );
    assert_eq!(
        out["rows"][0],
        json!({"i": 7, "big": 9_000_000_000_i64, "name": "ada", "ok": true, "doc": {"a": [1]}, "price": "12.50",
               "f": 1.5, "at": "2025-01-02T03:04:05Z", "id": "67e55044-10b1-426f-9247-bb680e5fe0c8",
               "raw": "\\x00ff", "missing": null, "p": 42})
    );
}

#[tokio::test]
async fn execute_returns_rows_affected() {
    let h = handler(2);
    fresh_table(&h, "db_execute", "id int primary key, v text").await;
    let out = call(
        &h,
        "db.execute",
        json!({"sql": "insert into db_execute values ($1, $2), ($3, $4)", "params": [1, "a", 2, "b"]}),
    )
    .await;
    assert_eq!(out, Ok(json!({"rows_affected": 2})));
    let out = call(&h, "db.execute", json!({"sql": "update db_execute set v = $1", "params": ["z"]})).await;
    assert_eq!(out, Ok(json!({"rows_affected": 2})));
}

#[tokio::test]
async fn transaction_commits_every_statement_and_returns_each_result() {
    let h = handler(2);
    fresh_table(&h, "db_tx_commit", "id int primary key, v text").await;
    let out = call(
        &h,
        "db.transaction",
        json!({"statements": [
            {"sql": "insert into db_tx_commit values ($1, $2)", "params": [1, "a"]},
            {"sql": "insert into db_tx_commit values ($1, $2)", "params": [2, "b"]},
            {"sql": "select count(*)::int4 as n from db_tx_commit"}
        ]}),
    )
    .await
    .expect("transaction succeeds");
    assert_eq!(out["results"][0], json!({"rows_affected": 1}));
    assert_eq!(out["results"][2]["rows"], json!([{"n": 2}]));
}

#[tokio::test]
async fn transaction_is_all_or_nothing() {
    let h = handler(2);
    fresh_table(&h, "db_tx_rollback", "id int primary key").await;
    let err = call(
        &h,
        "db.transaction",
        json!({"statements": [
            {"sql": "insert into db_tx_rollback values ($1)", "params": [1]},
            {"sql": "insert into db_tx_rollback values ($1)", "params": [1]}
        ]}),
    )
    .await
    .expect_err("the duplicate key fails the transaction");
    assert_eq!(err.class(), ErrorClass::Conflict, "{err}");
    assert!(err.to_string().contains("statement 1 (rolled back)"), "{err}");
    let out = call(&h, "db.query", json!({"sql": "select count(*)::int4 as n from db_tx_rollback"})).await;
    assert_eq!(out.map(|v| v["rows"].clone()), Ok(json!([{"n": 0}])));
}

#[tokio::test]
async fn hostile_strings_are_bound_as_values_never_as_sql() {
    let h = handler(2);
    fresh_table(&h, "db_hostile", "id serial primary key, v text").await;
    let hostile = [
        "'); drop table db_hostile; --",
        "x' or '1'='1",
        "$1",
        "\\'; select pg_sleep(10); --",
        "\u{0}".trim_matches('\u{0}'),
        "😀 ünïcödé \" ` ;",
    ];
    for s in hostile {
        let out = call(&h, "db.execute", json!({"sql": "insert into db_hostile (v) values ($1)", "params": [s]})).await;
        assert_eq!(out, Ok(json!({"rows_affected": 1})), "{s}");
    }
    let out = call(&h, "db.query", json!({"sql": "select v from db_hostile order by id"})).await.expect("table intact");
    let stored: Vec<&str> = out["rows"].as_array().expect("rows").iter().filter_map(|r| r["v"].as_str()).collect();
    assert_eq!(stored, hostile.to_vec());
    let out = call(
        &h,
        "db.query",
        json!({"sql": "select count(*)::int4 as n from db_hostile where v = $1", "params": ["x' or '1'='1"]}),
    )
    .await;
    assert_eq!(out.map(|v| v["rows"].clone()), Ok(json!([{"n": 1}])));
}

#[tokio::test]
async fn several_statements_in_one_sql_string_are_refused() {
    let h = handler(1);
    let err = call(&h, "db.execute", json!({"sql": "select 1; select 2"})).await.expect_err("refused");
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
}

#[tokio::test]
async fn a_parameter_of_the_wrong_type_is_permanent_and_named() {
    let h = handler(1);
    let err =
        call(&h, "db.query", json!({"sql": "select $1::int4 as n", "params": ["seven"]})).await.expect_err("refused");
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().contains("$1: expected an integer, got a string"), "{err}");
}

#[tokio::test]
async fn syntax_errors_are_permanent_and_carry_the_sqlstate() {
    let h = handler(1);
    let err = call(&h, "db.query", json!({"sql": "selec 1"})).await.expect_err("syntax error");
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().contains("42601"), "{err}");
}

#[tokio::test]
async fn unique_violations_are_conflicts_without_the_row_values() {
    let h = handler(1);
    fresh_table(&h, "db_unique", "email text unique").await;
    let insert = json!({"sql": "insert into db_unique values ($1)", "params": ["alice@example.com"]});
    call(&h, "db.execute", insert.clone()).await.expect("first insert");
    let err = call(&h, "db.execute", insert).await.expect_err("duplicate");
    assert_eq!(err.class(), ErrorClass::Conflict);
    let msg = err.to_string();
    assert!(msg.contains("db_unique_email_key") && !msg.contains("alice@example.com"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_calls_on_a_pool_of_five_all_complete() {
    let h = handler(5);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let h = Arc::clone(&h);
        tasks.spawn(async move {
            // A 2 ms server-side pause keeps connections busy so calls queue for the pool
            // (4 rounds of 5: ~8 ms of waiting in all).
            call(&h, "db.query", json!({"sql": "select $1::int4 as i, pg_sleep(0.002)::text as s", "params": [i]}))
                .await
        });
    }
    let mut ok = 0;
    while let Some(joined) = tasks.join_next().await {
        let out = joined.expect("task ran");
        assert!(out.is_ok(), "{out:?}");
        ok += 1;
    }
    assert_eq!(ok, 20);
    let (open, busy) = h.pool_status();
    assert!(open <= 5, "{open} connections open");
    assert_eq!(busy, 0);
}

#[tokio::test]
async fn pool_exhaustion_waits_until_the_deadline_then_fails_transient() {
    let h = handler(1);
    call(&h, "db.query", json!({"sql": "select 1::int4 as warm"})).await.expect("the pool has one idle connection");
    let locker = raw_client().await;
    let key = 0x0de7_5a11_i64;
    locker.execute("select pg_advisory_lock($1)", &[&key]).await.expect("lock taken");

    // The only pooled connection is checked out by a call that blocks on the lock: polled once,
    // it takes the idle connection and sends its statement, then waits for the server.
    let holder = call(&h, "db.execute", json!({"sql": "select pg_advisory_lock($1)", "params": [key]}));
    tokio::pin!(holder);
    tokio::select! {
        biased;
        out = &mut holder => panic!("the holder cannot finish while the lock is taken: {out:?}"),
        () = std::future::ready(()) => {}
    }
    assert_eq!(h.pool_status().1, 1, "the holder has the connection");

    let deadline = SystemClock::new().now().saturating_add(Duration::from_millis(200));
    let ctx = CallContext { deadline: Some(deadline), ..ctx() };
    let err = h
        .execute(&ctx, &Operation::from("db.query"), &json!({"sql": "select 1"}))
        .await
        .expect_err("no connection is free");
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
    assert!(err.to_string().contains("pool_size 1"), "{err}");

    locker.execute("select pg_advisory_unlock($1)", &[&key]).await.expect("lock released");
    assert_eq!(holder.await, Ok(json!({"rows_affected": 1})));
    call(&h, "db.execute", json!({"sql": "select pg_advisory_unlock($1)", "params": [key]})).await.expect("unlock");
}

#[tokio::test]
async fn a_lost_connection_is_transient_and_the_next_call_reconnects() {
    let h = handler(1);
    let err = call(&h, "db.query", json!({"sql": "select pg_terminate_backend(pg_backend_pid())"}))
        .await
        .expect_err("the server closes our connection");
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
    let out = call(&h, "db.query", json!({"sql": "select 1::int4 as one"})).await;
    assert_eq!(out.map(|v| v["rows"].clone()), Ok(json!([{"one": 1}])));
}

#[tokio::test]
async fn health_checks_the_real_server() {
    let h = handler(1);
    let health = h.health().await;
    assert!(health.healthy, "{}", health.detail);
    h.shutdown().await;
    assert!(!h.health().await.healthy);
}
