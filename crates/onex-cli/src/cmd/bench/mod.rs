//! `onex bench`: throughput and latency, one JSON line per scenario.
//!
//! Scenarios, in the order they run:
//! - `rss_idle_10_nodes`: resident memory of this process after starting a
//!   host with 10 idle nodes (first, before other scenarios allocate);
//! - `codec_floor`: bare JSON decode + encode of the benchmark envelope, on
//!   one core — the floor every other number is compared with;
//! - `roundtrip_c1`: one envelope at a time: the client publishes the
//!   serialized envelope, the host routes it to an EFFECT node whose handler
//!   echoes the payload, and the client reads and parses the serialized
//!   response — as it would over Kafka;
//! - `roundtrip_pipelined`: the same with `--in-flight` envelopes outstanding.
//!
//! With `--bus kafka` it runs `codec_floor` and, over the broker at
//! `--kafka-bootstrap`, with `--kafka-envelopes` round trips each
//! ([`kafka`] has the details):
//! - `kafka_raw_c1`, `kafka_raw_pipelined`: a bare rdkafka consume → produce
//!   loop in the middle — the reference;
//! - `kafka_host_c1`, `kafka_host_pipelined`: the onex host on a Kafka bus in
//!   the middle, with `ratio_to_raw` (its throughput over the raw loop's at
//!   the same in-flight count).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use onex_bus::{EventBus, MemoryBus, MemoryBusConfig};
use onex_core::contract::Environment;
use onex_core::{Envelope, EnvelopeId, NodeId, Operation, SystemClock, TopicName, UuidV7Ids};
use onex_handlers::LocalHandler;
use onex_runtime::{Client, EffectNode, NodeOptions, Outcome, RunningHost, RuntimeHost};
use serde_json::{Value, json};

/// Options of `onex bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Envelopes per scenario.
    #[arg(long, default_value_t = 100_000)]
    envelopes: u64,
    /// Envelopes outstanding in the pipelined scenario.
    #[arg(long, default_value_t = 100)]
    in_flight: usize,
    /// Async worker threads (default: one per core; 1 runs everything on one thread).
    #[arg(long)]
    pub worker_threads: Option<usize>,
    /// Also compare a bare HTTP GET of this URL with the same GET through the host (`http_bare`, `http_host`).
    #[arg(long, value_name = "URL")]
    http_url: Option<String>,
    /// Also compare a bare PostgreSQL query with `db.query` through the host (`db_bare`, `db_host`).
    #[arg(long, value_name = "URL")]
    pg_url: Option<String>,
    /// Round trips in the http and db scenarios (they wait on real I/O).
    #[arg(long, default_value_t = 2_000)]
    io_envelopes: u64,
    /// Run only these scenarios (comma-separated): rss_idle_10_nodes, codec_floor, roundtrip_c1, roundtrip_pipelined;
    /// with `--bus kafka`: codec_floor, kafka_raw_c1, kafka_raw_pipelined, kafka_host_c1, kafka_host_pipelined.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The bus of the round trips: in-memory, or a Kafka broker (then only codec_floor and the kafka_* scenarios run).
    #[arg(long, value_enum, default_value_t = Bus::Memory)]
    bus: Bus,
    /// Kafka bootstrap servers for `--bus kafka`.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9092")]
    kafka_bootstrap: String,
    /// Longest a Kafka fetch waits on the broker, for every consumer (on tansu every fetch waits this long).
    #[arg(long, default_value_t = 1)]
    kafka_fetch_wait_ms: u64,
    /// Round trips per Kafka scenario (each costs milliseconds).
    #[arg(long, default_value_t = 5_000)]
    kafka_envelopes: u64,
    /// Producer `linger.ms` for every Kafka client (default: the Kafka bus default, 1).
    #[arg(long)]
    kafka_linger_ms: Option<u64>,
    /// The host bus's `max_in_flight` per consumer; fetching pauses at 80 % of it (default: the Kafka bus default, 100).
    #[arg(long)]
    kafka_max_in_flight: Option<std::num::NonZeroUsize>,
    /// The echo node's concurrency in the Kafka host (default: the node default, 64).
    #[arg(long)]
    kafka_node_concurrency: Option<std::num::NonZeroUsize>,
}

/// Where `onex bench` sends its round trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Bus {
    Memory,
    Kafka,
}

impl BenchArgs {
    fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == scenario)
    }
}

const INPUT: &str = "onex.bench.app.cmd.v1";
const OUTPUT: &str = "onex.bench.app.evt.v1";

pub async fn run(args: &BenchArgs) -> std::process::ExitCode {
    let wants = |name: &str| args.wants(name);
    let result = async {
        if args.bus == Bus::Kafka {
            if wants("codec_floor") {
                codec_floor(args.envelopes);
            }
            // The client runs as a worker task, as in the in-memory round trips.
            return tokio::spawn(kafka::run(args.clone())).await.map_err(|e| e.to_string())?;
        }
        if wants("rss_idle_10_nodes") {
            rss_idle_nodes(10).await?;
        }
        let mut floor = None;
        if wants("codec_floor") {
            floor = Some(codec_floor(args.envelopes));
        }
        // The client runs as a task on the runtime's workers, like the host, so
        // the process uses exactly the worker threads and no extra thread competes.
        if wants("roundtrip_c1") {
            tokio::spawn(roundtrip(args.envelopes, 1, floor)).await.map_err(|e| e.to_string())??;
        }
        if wants("roundtrip_pipelined") {
            tokio::spawn(roundtrip(args.envelopes, args.in_flight.max(1), floor))
                .await
                .map_err(|e| e.to_string())??;
        }
        // I/O-bound: run on this task (the async closures they use are not `Send`).
        if let Some(url) = &args.http_url {
            io::http(url.clone(), args.io_envelopes).await?;
        }
        if let Some(url) = &args.pg_url {
            io::db(url.clone(), args.io_envelopes).await?;
        }
        Ok::<(), String>(())
    }
    .await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

mod io;
mod kafka;

fn sample_envelope() -> Envelope {
    let mut e = Envelope::command(
        &UuidV7Ids,
        &SystemClock::new(),
        "local.echo",
        json!({"order_id": "o-1842", "customer": "ada", "amount_cents": 12_999, "items": ["sku-1", "sku-2"]}),
    );
    e.source_node = Some("bench-client".into());
    e.metadata.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
    e.metadata.request_id = Some("req-1842".into());
    e
}

pub(super) fn histogram() -> Result<Histogram<u64>, String> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())
}

pub(super) fn line(scenario: &str, n: u64, elapsed: Duration, h: &Histogram<u64>, extra: Value) {
    let us = |q: f64| (h.value_at_quantile(q) as f64 / 1000.0 * 100.0).round() / 100.0;
    let throughput = (n as f64 / elapsed.as_secs_f64()).round();
    let mut out = json!({
        "scenario": scenario,
        "envelopes": n,
        "seconds": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "throughput_per_sec": throughput,
        "p50_us": us(0.5),
        "p99_us": us(0.99),
        "p999_us": us(0.999),
        "max_us": (h.max() as f64 / 1000.0 * 100.0).round() / 100.0,
    });
    if let (Value::Object(o), Value::Object(e)) = (&mut out, extra) {
        o.extend(e);
    }
    println!("{out}");
}

/// Bare decode + encode of the benchmark envelope on this thread. Returns envelopes/s.
fn codec_floor(n: u64) -> f64 {
    let bytes = sample_envelope().to_json();
    let Ok(mut h) = histogram() else { return 0.0 };
    let start = Instant::now();
    let mut total = 0usize;
    for _ in 0..n {
        let t = Instant::now();
        if let Ok(e) = Envelope::from_json(&bytes) {
            total += e.to_json().len();
        }
        let _ = h.record(t.elapsed().as_nanos() as u64);
    }
    let elapsed = start.elapsed();
    line("codec_floor", n, elapsed, &h, json!({ "envelope_bytes": bytes.len(), "checksum": total % 1000 }));
    n as f64 / elapsed.as_secs_f64()
}

async fn start_host(nodes: usize) -> Result<RunningHost, String> {
    let input: TopicName = INPUT.parse().map_err(|e| format!("{e}"))?;
    let output: TopicName = OUTPUT.parse().map_err(|e| format!("{e}"))?;
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(MemoryBusConfig::default()));
    let local = Arc::new(LocalHandler::new(Environment::Dev).map_err(|e| e.to_string())?);
    let mut builder = RuntimeHost::builder().bus(bus).topics(input, output).handler("local", local.clone());
    for i in 0..nodes {
        // One node answers local.echo; the others sit idle on their own topics.
        let (op, subscribe) = if i == 0 {
            ("local.echo".to_owned(), vec![])
        } else {
            (format!("local.idle{i}"), vec![format!("onex.bench.idle{i}.cmd.v1").parse().map_err(|e| format!("{e}"))?])
        };
        let node = EffectNode::builder().route(Operation::new(op), local.clone()).build();
        builder = builder.node(
            NodeId::new(format!("node{i}")),
            Arc::new(node),
            NodeOptions { subscribe, ..NodeOptions::default() },
        );
    }
    builder.build().await.map_err(|e| e.to_string())?.start().await.map_err(|e| e.to_string())
}

async fn rss_idle_nodes(nodes: usize) -> Result<(), String> {
    let host = start_host(nodes).await?;
    tokio::task::yield_now().await;
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    println!(
        "{}",
        json!({"scenario": "rss_idle_10_nodes", "nodes": nodes, "rss_bytes": rss * 1024, "rss_mib": (rss as f64 / 1024.0 * 10.0).round() / 10.0})
    );
    host.shutdown().await;
    Ok(())
}

async fn roundtrip(n: u64, in_flight: usize, floor: Option<f64>) -> Result<(), String> {
    let host = start_host(1).await?;
    let input: TopicName = INPUT.parse().map_err(|e| format!("{e}"))?;
    let mut client =
        Client::connect(Arc::clone(host.bus()), "bench-client", &host.output_topics(), &[host.dlq_topic().clone()])
            .await
            .map_err(|e| e.to_string())?;
    let sender = client.sender();
    let mut h = histogram()?;
    let mut sent_at: HashMap<EnvelopeId, Instant> = HashMap::with_capacity(in_flight * 2);
    let mut next = requests(n).into_iter();
    let start = Instant::now();
    let mut outstanding = 0usize;
    let mut done = 0u64;
    let mut failures = 0u64;
    while done < n {
        while outstanding < in_flight {
            let Some((id, key, payload)) = next.next() else { break };
            sent_at.insert(id, Instant::now());
            sender.send_raw(&input, Some(key), payload).await.map_err(|e| e.to_string())?;
            outstanding += 1;
        }
        match client.next().await {
            Some(Ok(Outcome::Response { envelope, .. })) => {
                if let Some(t) = envelope.causation_id.and_then(|c| sent_at.remove(&c)) {
                    let _ = h.record(t.elapsed().as_nanos() as u64);
                }
                if envelope.success != Some(true) {
                    failures += 1;
                }
            }
            Some(Ok(_)) => failures += 1,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("bus closed during the benchmark".into()),
        }
        outstanding -= 1;
        done += 1;
    }
    let elapsed = start.elapsed();
    let scenario = if in_flight == 1 { "roundtrip_c1" } else { "roundtrip_pipelined" };
    let throughput = n as f64 / elapsed.as_secs_f64();
    let mut extra = json!({ "in_flight": in_flight, "failures": failures });
    if let (Some(f), Value::Object(o)) = (floor, &mut extra) {
        o.insert("ratio_to_codec_floor".into(), json!((throughput / f * 1000.0).round() / 1000.0));
    }
    line(scenario, n, elapsed, &h, extra);
    host.shutdown().await;
    Ok(())
}

/// `n` benchmark requests with fresh ids as (id, key, bytes), serialized up
/// front so the timing covers the path, not request building.
fn requests(n: u64) -> Vec<(EnvelopeId, bytes::Bytes, bytes::Bytes)> {
    let template = sample_envelope();
    (0..n)
        .map(|_| {
            let mut e = template.clone();
            let id = uuid_v7();
            e.envelope_id = EnvelopeId(id);
            e.correlation_id = Some(onex_core::CorrelationId(id));
            (e.envelope_id, bytes::Bytes::from(e.partition_key()), bytes::Bytes::from(e.to_json()))
        })
        .collect()
}

fn uuid_v7() -> uuid::Uuid {
    onex_core::IdGen::next_id(&UuidV7Ids)
}
