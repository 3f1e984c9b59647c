//! Handlers that wait on real I/O, measured bare and through the host in the
//! same run: `http_bare` vs `http_host` (a GET), `db_bare` vs `db_host` (a
//! one-row query). One call at a time, so the difference is the host's
//! overhead per call: parsing, routing, the handler's own work, the response
//! envelope and the bus.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use onex_bus::{EventBus, MemoryBus, MemoryBusConfig};
use onex_core::{Envelope, SystemClock, TopicName, UuidV7Ids};
use onex_handlers::{DbHandler, Handler, HttpHandler};
use onex_runtime::{Client, EffectNode, NodeOptions, Outcome, RuntimeHost};
use serde_json::{Map, Value, json};

use super::{histogram, line};

pub async fn http(url: String, n: u64) -> Result<(), String> {
    let client = onex_handlers::http::client_builder().build().map_err(|e| e.to_string())?;
    let bare = measure(n, async || {
        let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
        response.bytes().await.map(|_| ()).map_err(|e| e.to_string())
    })
    .await?;
    let handler = HttpHandler::from_config(&Map::new()).map_err(|e| e.to_string())?;
    let host = through_host(Arc::new(handler), "http.get", json!({ "url": url }), n).await?;
    report("http", n, &bare, &host);
    Ok(())
}

pub async fn db(url: String, n: u64) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
    let connection = tokio::spawn(connection);
    let statement = client.prepare("select $1::int + 1 as answer").await.map_err(|e| e.to_string())?;
    let bare =
        measure(n, async || client.query(&statement, &[&41i32]).await.map(|_| ()).map_err(|e| e.to_string())).await?;
    drop(client);
    let _ = connection.await;
    let config = json!({ "url": url, "pool_size": 1 });
    let config = config.as_object().cloned().unwrap_or_default();
    let handler = DbHandler::from_config(&config).map_err(|e| e.to_string())?;
    let payload = json!({ "sql": "select $1::int + 1 as answer", "params": [41] });
    let host = through_host(Arc::new(handler), "db.query", payload, n).await?;
    report("db", n, &bare, &host);
    Ok(())
}

struct Run {
    elapsed: Duration,
    histogram: Histogram<u64>,
}

async fn measure(n: u64, mut call: impl AsyncFnMut() -> Result<(), String>) -> Result<Run, String> {
    call().await?; // warm the connection
    let mut histogram = histogram()?;
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        call().await?;
        let _ = histogram.record(t.elapsed().as_nanos() as u64);
    }
    Ok(Run { elapsed: start.elapsed(), histogram })
}

async fn through_host(handler: Arc<dyn Handler>, op: &'static str, payload: Value, n: u64) -> Result<Run, String> {
    let input: TopicName = "onex.bench.io.cmd.v1".parse().map_err(|e| format!("{e}"))?;
    let output: TopicName = "onex.bench.io.evt.v1".parse().map_err(|e| format!("{e}"))?;
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(MemoryBusConfig::default()));
    let node = EffectNode::builder().route(op, Arc::clone(&handler)).build();
    let running = RuntimeHost::builder()
        .bus(bus)
        .topics(input.clone(), output)
        .handler(op, handler)
        .node("io", Arc::new(node), NodeOptions::default())
        .build()
        .await
        .map_err(|e| e.to_string())?
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let mut client = Client::connect(
        Arc::clone(running.bus()),
        "bench-io",
        &running.output_topics(),
        &[running.dlq_topic().clone()],
    )
    .await
    .map_err(|e| e.to_string())?;
    let sender = client.sender();
    let run = measure(n, async || {
        let envelope = Envelope::command(&UuidV7Ids, &SystemClock::new(), op, payload.clone());
        sender.send(&input, &envelope).await.map_err(|e| e.to_string())?;
        match client.next().await {
            Some(Ok(Outcome::Response { envelope, .. })) if envelope.success == Some(true) => Ok(()),
            Some(Ok(Outcome::Response { envelope, .. })) => Err(format!("{op} failed: {:?}", envelope.error)),
            other => Err(format!("unexpected outcome: {other:?}")),
        }
    })
    .await;
    running.shutdown().await;
    run
}

fn report(name: &str, n: u64, bare: &Run, host: &Run) {
    line(&format!("{name}_bare"), n, bare.elapsed, &bare.histogram, json!({}));
    let overhead = host.elapsed.as_secs_f64() / bare.elapsed.as_secs_f64() - 1.0;
    line(
        &format!("{name}_host"),
        n,
        host.elapsed,
        &host.histogram,
        json!({ "overhead_vs_bare_pct": (overhead * 1000.0).round() / 10.0 }),
    );
}
