//! The http handler's round trip against a bare reqwest call to the same
//! local server, in the same run (target: handler overhead < 10 %).
//!
//! The server (axum, one small JSON body) runs on its own thread and runtime,
//! so the client side is what differs. Both sides do the same network work
//! with the same reqwest version and a pooled keep-alive connection; the bare
//! call also parses the JSON into a `Value`, as any caller would. The
//! handler adds payload checks, URL resolution, the status classification,
//! the bounded body read and the result map. A third case puts the handler
//! behind the full resilience stack.

#![allow(clippy::expect_used, reason = "benchmark set-up fails loudly")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use onex_core::contract::{HandlerBinding, HandlerType};
use onex_core::{CorrelationId, EnvelopeId, Operation};
use onex_handlers::resilience::{ResilientHandler, TokioClock};
use onex_handlers::{CallContext, Handler, HttpHandler};
use serde_json::{Value, json};
use uuid::Uuid;

/// Serves `GET /json` on a loopback port from a thread of its own, for the life of the process.
fn start_server() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("server runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("report the address");
            let body = json!({"id": 42, "status": "paid", "amount": {"value": 1999, "currency": "EUR"}});
            let app = Router::new().route("/json", get(move || async move { axum::Json(body) }));
            axum::serve(listener, app).await.expect("serve");
        });
    });
    rx.recv().expect("the server's address")
}

fn bench(c: &mut Criterion) {
    let addr = start_server();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("client runtime");

    let config = json!({"base_url": format!("http://{addr}/")});
    let handler = Arc::new(HttpHandler::from_config(config.as_object().expect("map")).expect("handler"));
    let bare = onex_handlers::http::client_builder().build().expect("bare client");
    let url = format!("http://{addr}/json");

    let binding = HandlerBinding::new(HandlerType::Http, "api");
    let stack = rt.block_on(async {
        ResilientHandler::new(Arc::clone(&handler) as Arc<dyn Handler>, &binding, Arc::new(TokioClock::new()))
    });

    let ctx = CallContext {
        envelope_id: EnvelopeId(Uuid::from_u128(1)),
        correlation_id: CorrelationId(Uuid::from_u128(2)),
        attempt: 1,
        deadline: None,
    };
    let op = Operation::from("http.get");
    let payload = json!({"url": "json"});

    let mut group = c.benchmark_group("http_round_trip");
    group.sample_size(200).measurement_time(Duration::from_secs(8));
    group.bench_function("bare_reqwest", |b| {
        b.iter(|| {
            rt.block_on(async {
                let response = bare.get(&url).send().await.expect("send");
                let value: Value = response.json().await.expect("json");
                value
            })
        });
    });
    group.bench_function("http_handler", |b| {
        b.iter(|| rt.block_on(handler.execute(&ctx, &op, &payload)).expect("call"));
    });
    group.bench_function("http_handler_resilient", |b| {
        b.iter(|| rt.block_on(stack.execute(&ctx, &op, &payload)).expect("call"));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
