//! The admin server and graceful shutdown, on the in-memory bus: probes through
//! a host's life, the bearer token, the status API, and seed 000's shutdown
//! test (50 envelopes in flight when shutdown starts: all answered, readiness
//! 503 first, each handler shut down once).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use onex_core::contract::AdminSpec;
use onex_core::{Envelope, EnvelopeId, Operation, SystemClock, TopicName, UuidV7Ids};
use onex_handlers::{CallContext, Handler, HandlerDescription, HandlerError, HandlerHealth};
use onex_runtime::{AdminServer, Client, EffectNode, NodeOptions, Outcome, Phase, RuntimeHost};
use serde_json::{Value, json};
use tokio::sync::watch;

/// Holds every call until the gate opens; counts shutdowns.
#[derive(Debug)]
struct GatedHandler {
    open: watch::Receiver<bool>,
    shutdowns: AtomicU32,
}

#[async_trait]
impl Handler for GatedHandler {
    fn handler_type(&self) -> &str {
        "gated"
    }

    fn describe(&self) -> HandlerDescription {
        HandlerDescription::new("gated", &[("gated.work", "waits for the gate")])
    }

    async fn execute(&self, _: &CallContext, _: &Operation, payload: &Value) -> Result<Value, HandlerError> {
        let mut open = self.open.clone();
        let _ = open.wait_for(|o| *o).await;
        Ok(payload.clone())
    }

    async fn health(&self) -> HandlerHealth {
        HandlerHealth { healthy: true, detail: "gated test handler".into() }
    }

    async fn shutdown(&self) {
        self.shutdowns.fetch_add(1, Ordering::SeqCst);
    }
}

fn admin_spec(token: Option<&str>) -> AdminSpec {
    AdminSpec { port: 0, token: token.map(str::to_owned), ..AdminSpec::default() }
}

fn http() -> reqwest::Client {
    onex_handlers::http::client_builder().build().unwrap()
}

async fn get(admin: &AdminServer, path: &str, token: Option<&str>) -> (u16, String, Option<String>) {
    let mut req = http().get(format!("http://{}{path}", admin.local_addr()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), r.text().await.unwrap(), challenge)
}

fn topics() -> (TopicName, TopicName) {
    ("onex.acme.gate.cmd.v1".parse().unwrap(), "onex.acme.gate.evt.v1".parse().unwrap())
}

struct Setup {
    host: RuntimeHost,
    handler: Arc<GatedHandler>,
    gate: watch::Sender<bool>,
}

async fn setup(grace: Duration) -> Setup {
    let (gate, open) = watch::channel(false);
    let handler = Arc::new(GatedHandler { open, shutdowns: AtomicU32::new(0) });
    let (input, output) = topics();
    let node = EffectNode::builder().route("gated.work", handler.clone() as Arc<dyn Handler>).build();
    let host = RuntimeHost::builder()
        .topics(input, output)
        .handler("gated", handler.clone())
        .node(
            "worker",
            Arc::new(node),
            NodeOptions { concurrency: std::num::NonZeroUsize::new(64).unwrap(), ..NodeOptions::default() },
        )
        .shutdown_grace(grace)
        .build()
        .await
        .unwrap();
    Setup { host, handler, gate }
}

fn work(i: u32) -> Envelope {
    let mut e = Envelope::command(&UuidV7Ids, &SystemClock::new(), "gated.work", json!({"i": i}));
    e.metadata.partition_key = Some(format!("entity-{i}"));
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_follow_the_host_through_startup_ready_and_draining_and_shutdown_answers_all_50_in_flight() {
    let Setup { host, handler, gate } = setup(Duration::from_secs(30)).await;
    let admin = host.serve_admin(&admin_spec(None)).await.unwrap();

    // Before consuming: alive, not started, not ready.
    assert_eq!(get(&admin, "/health/live", None).await.0, 200);
    assert_eq!(get(&admin, "/health/startup", None).await.0, 503);
    let (code, body, _) = get(&admin, "/health/ready", None).await;
    assert_eq!(code, 503);
    assert!(body.contains("starting"), "{body}");

    let running = host.start().await.unwrap();
    assert_eq!(running.phase(), Phase::Ready);
    assert_eq!(get(&admin, "/health/startup", None).await.0, 200);
    assert_eq!(get(&admin, "/health/ready", None).await, (200, json!({"status": "ready"}).to_string(), None));

    // 50 envelopes in flight (the handler holds them).
    let (input, _) = topics();
    let mut client =
        Client::connect(Arc::clone(running.bus()), "test", &running.output_topics(), &[running.dlq_topic().clone()])
            .await
            .unwrap();
    let sent: Vec<Envelope> = (0..50).map(work).collect();
    for e in &sent {
        client.sender().send(&input, e).await.unwrap();
    }
    while running.status().await.in_flight < 50 {
        tokio::task::yield_now().await;
    }
    let status: Value = serde_json::from_str(&get(&admin, "/api/status", None).await.1).unwrap();
    assert_eq!(status["in_flight"], 50);
    assert_eq!(status["nodes"][0]["id"], "worker");
    assert_eq!(status["nodes"][0]["counts"]["received"], 50);
    assert_eq!(status["handlers"][0]["name"], "gated");
    assert_eq!(status["handlers"][0]["healthy"], true);

    // Shutdown starts: readiness is 503 (draining) while the 50 are still in flight.
    let shutdown = tokio::spawn(running.shutdown());
    loop {
        let (code, body, _) = get(&admin, "/health/ready", None).await;
        if code == 503 {
            assert!(body.contains("draining") && body.contains("50 envelope(s) in flight"), "{body}");
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(get(&admin, "/health/live", None).await.0, 200, "still alive while draining");

    // They finish: every one answered exactly once, nothing dropped.
    gate.send(true).unwrap();
    let report = tokio::time::timeout(Duration::from_secs(30), shutdown).await.unwrap().unwrap();
    assert!(report.drained);
    assert_eq!((report.stats.received, report.stats.succeeded), (50, 50));
    let mut answered = HashSet::new();
    for _ in 0..50 {
        match client.next().await.unwrap().unwrap() {
            Outcome::Response { envelope, .. } => {
                assert_eq!(envelope.success, Some(true));
                assert!(answered.insert(envelope.causation_id.unwrap()), "answered twice");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let expected: HashSet<EnvelopeId> = sent.iter().map(|e| e.envelope_id).collect();
    assert_eq!(answered, expected);
    assert_eq!(handler.shutdowns.load(Ordering::SeqCst), 1, "each handler is shut down exactly once");
    let (code, body, _) = get(&admin, "/health/ready", None).await;
    assert_eq!(code, 503);
    assert!(body.contains("stopped"), "{body}");
    admin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_grace_period_shutdown_reports_not_drained_and_still_shuts_handlers_down_once() {
    let Setup { host, handler, gate: _gate } = setup(Duration::from_millis(30)).await;
    let running = host.start().await.unwrap();
    let (input, _) = topics();
    let client = Client::connect(Arc::clone(running.bus()), "test", &running.output_topics(), &[]).await.unwrap();
    for i in 0..3 {
        client.sender().send(&input, &work(i)).await.unwrap();
    }
    while running.status().await.in_flight < 3 {
        tokio::task::yield_now().await;
    }
    // The gate never opens: the 30 ms grace period runs out.
    let report = running.shutdown().await;
    assert!(!report.drained);
    assert_eq!(report.stats.succeeded, 0);
    assert_eq!(handler.shutdowns.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_api_and_metrics_need_the_bearer_token_and_probes_do_not() {
    let Setup { host, .. } = setup(Duration::from_secs(1)).await;
    let admin = host.serve_admin(&admin_spec(Some("s3cr3t-admin-token"))).await.unwrap();
    let running = host.start().await.unwrap();

    let (code, _, challenge) = get(&admin, "/api/status", None).await;
    assert_eq!((code, challenge.as_deref()), (401, Some(r#"Bearer realm="onex""#)));
    let (code, _, challenge) = get(&admin, "/metrics", Some("wrong")).await;
    assert_eq!(code, 401);
    assert!(challenge.unwrap().contains(r#"error="invalid_token""#));
    let (code, body, _) = get(&admin, "/api/status", Some("s3cr3t-admin-token")).await;
    assert_eq!(code, 200);
    assert!(!body.contains("s3cr3t"), "the token never appears in the API");
    assert_eq!(get(&admin, "/metrics", Some("s3cr3t-admin-token")).await.0, 200);
    // Probes stay open for the orchestrator; the dashboard page holds no data.
    assert_eq!(get(&admin, "/health/ready", None).await.0, 200);
    assert_eq!(get(&admin, "/health/handlers", None).await.0, 200);
    let (code, page, _) = get(&admin, "/", None).await;
    assert_eq!(code, 200);
    assert!(page.contains("/api/status"));
    running.shutdown().await;
    admin.stop().await;
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let Setup { host, .. } = setup(Duration::from_secs(1)).await;
    let err = host.serve_admin(&AdminSpec { port, ..AdminSpec::default() }).await.unwrap_err().to_string();
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{err}");
    assert!(err.contains("runtime.admin.port"), "{err}");
}
