//! The db handler's `db.query` versus a bare tokio-postgres query on the same server.
//!
//! Both sides use a deadpool pool of one connection with a cached prepared statement
//! and run `select $1::int4 as n, $2::text as s` with the same values, one call at a
//! time, so the difference is the handler's own cost: payload parsing, parameter
//! binding by declared type, and rows to JSON. Needs PostgreSQL (`scripts/services.sh`;
//! `ONEX_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/test`).
#![allow(clippy::expect_used, reason = "a bench without its server cannot run")]

use std::hint::black_box;
use std::str::FromStr;

use criterion::{Criterion, criterion_group, criterion_main};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use onex_core::{CorrelationId, EnvelopeId, Operation};
use onex_handlers::{CallContext, DbHandler, DbHandlerConfig, Handler};
use serde_json::json;
use uuid::Uuid;

const SQL: &str = "select $1::int4 as n, $2::text as s";

fn pg_url() -> String {
    std::env::var("ONEX_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn bench_db(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");

    let mut cfg = DbHandlerConfig::new(pg_url());
    cfg.pool_size = std::num::NonZeroUsize::MIN;
    let handler = DbHandler::new(&cfg).expect("db handler");
    let ctx = CallContext {
        envelope_id: EnvelopeId(Uuid::from_u128(1)),
        correlation_id: CorrelationId(Uuid::from_u128(1)),
        attempt: 1,
        deadline: None,
    };
    let op = Operation::from("db.query");
    let payload = json!({"sql": SQL, "params": [7, "seven"]});

    let pg = tokio_postgres::Config::from_str(&pg_url()).expect("url");
    let manager =
        Manager::from_config(pg, tokio_postgres::NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let pool = Pool::builder(manager).max_size(1).runtime(Runtime::Tokio1).build().expect("pool");

    // Warm both: connect and prepare.
    rt.block_on(async {
        handler.execute(&ctx, &op, &payload).await.expect("PostgreSQL is running (scripts/services.sh)");
        let client = pool.get().await.expect("connect");
        client.prepare_cached(SQL).await.expect("prepare");
    });

    let mut group = c.benchmark_group("db_query");
    group.bench_function("handler", |b| {
        b.to_async(&rt).iter(|| async { black_box(handler.execute(&ctx, &op, &payload).await.expect("query")) });
    });
    group.bench_function("bare_tokio_postgres", |b| {
        b.to_async(&rt).iter(|| async {
            let client = pool.get().await.expect("connection");
            let stmt = client.prepare_cached(SQL).await.expect("prepare");
            let n = 7_i32;
            let s = "seven";
            let rows = client.query(&stmt, &[&n, &s]).await.expect("query");
            let first = rows.first().expect("one row");
            black_box((first.get::<_, i32>(0), first.get::<_, String>(1)))
        });
    });
    group.finish();
}

criterion_group!(benches, bench_db);
criterion_main!(benches);
