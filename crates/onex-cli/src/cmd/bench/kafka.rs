//! `onex bench --bus kafka`: round trips over a Kafka broker, with a bare
//! rdkafka loop and the onex host in the middle, in the same run.
//!
//! One client measures both, so only the middle differs: it publishes each
//! request (its own [`KafkaBus`], like a remote producer), waits for the reply
//! on the output topic and records the latency per envelope id.
//! - `kafka_raw_*`: a plain rdkafka consumer reads each request and produces
//!   the same bytes to the output topic, then stores the request's offset once
//!   the broker acked the reply — the least any consume → produce service
//!   does with onex's delivery guarantees (same producer and consumer
//!   settings as the Kafka bus).
//! - `kafka_host_*`: the onex host on a [`KafkaBus`], routing each request to
//!   an EFFECT node whose `local.echo` handler returns the payload.
//!
//! Every run uses fresh topics and groups, so it never reads an earlier run's
//! records, and waits for one warm-up round trip (consumer-group joins) before
//! timing.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use onex_bus::EventBus;
use onex_bus::kafka::{KafkaBus, KafkaConfig};
use onex_core::contract::Environment;
use onex_core::{EnvelopeId, NodeId, Operation, TopicName};
use onex_handlers::LocalHandler;
use onex_runtime::{Client, EffectNode, NodeOptions, Outcome, RunningHost, RuntimeHost, Sender};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use super::{BenchArgs, histogram, line};

/// A round trip that makes no progress for this long fails the scenario.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(30);
/// The first round trip also waits for both consumer groups to join (seconds on tansu).
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) async fn run(args: BenchArgs) -> Result<(), String> {
    let (n, in_flight) = (args.kafka_envelopes, args.in_flight.max(1));
    let config = config(&args);
    let raw_levels: Vec<(&str, usize)> =
        [("kafka_raw_c1", 1), ("kafka_raw_pipelined", in_flight)].into_iter().filter(|(s, _)| args.wants(s)).collect();
    let host_levels: Vec<(&str, usize)> = [("kafka_host_c1", 1), ("kafka_host_pipelined", in_flight)]
        .into_iter()
        .filter(|(s, _)| args.wants(s))
        .collect();
    if raw_levels.is_empty() && host_levels.is_empty() {
        return Ok(());
    }
    // Connected first, so an unreachable broker fails here, after `config.timeout`.
    let client_bus: Arc<dyn EventBus> = Arc::new(
        KafkaBus::connect(config.clone())
            .await
            .map_err(|e| format!("{e} (onex bench takes the broker address from --kafka-bootstrap)"))?,
    );
    let extra = |in_flight: usize, failures: u64| {
        json!({
            "in_flight": in_flight,
            "fetch_wait_ms": config.fetch_wait_max.as_millis(),
            "linger_ms": config.linger.as_millis(),
            "failures": failures,
        })
    };

    // Raw throughput per in-flight level, for the host lines' ratio.
    let mut raw_throughput: HashMap<usize, f64> = HashMap::new();
    if !raw_levels.is_empty() {
        let topics = Topics::fresh(&config).await?;
        let raw = RawEcho::start(&config, &topics).await?;
        let measured = async {
            let mut probe = Probe::connect(Arc::clone(&client_bus), &topics).await?;
            probe.round_trips("kafka_raw warm-up", 1, 1, WARM_UP_TIMEOUT).await?;
            for (scenario, level) in &raw_levels {
                let run = probe.round_trips(scenario, n, *level, PROGRESS_TIMEOUT).await?;
                raw_throughput.insert(*level, run.throughput());
                line(scenario, n, run.elapsed, &run.histogram, extra(*level, run.failures));
            }
            Ok::<(), String>(())
        }
        .await;
        // A failed raw loop explains a missing reply better than the client's timeout.
        raw.stop().await?;
        measured?;
    }

    if !host_levels.is_empty() {
        let topics = Topics::fresh(&config).await?;
        let concurrency = args.kafka_node_concurrency.unwrap_or(NodeOptions::default().concurrency);
        let host = start_host(&config, &topics, concurrency).await?;
        let measured = async {
            let mut probe = Probe::connect(Arc::clone(&client_bus), &topics).await?;
            probe.round_trips("kafka_host warm-up", 1, 1, WARM_UP_TIMEOUT).await?;
            for (scenario, level) in &host_levels {
                let run = probe.round_trips(scenario, n, *level, PROGRESS_TIMEOUT).await?;
                let mut extra = extra(*level, run.failures);
                if let Some(o) = extra.as_object_mut() {
                    o.insert("node_concurrency".into(), json!(concurrency));
                    o.insert("max_in_flight".into(), json!(config.max_in_flight));
                    if let Some(raw) = raw_throughput.get(level) {
                        o.insert("ratio_to_raw".into(), json!((run.throughput() / raw * 1000.0).round() / 1000.0));
                    }
                }
                line(scenario, n, run.elapsed, &run.histogram, extra);
            }
            Ok::<(), String>(())
        }
        .await;
        host.shutdown().await;
        measured?;
    }
    client_bus.close().await;
    Ok(())
}

/// The benchmark's settings: the Kafka bus defaults (acks=all, idempotent
/// producer) with the fetch wait, linger and member limit asked for, the same
/// for the client, the raw loop and the host.
fn config(args: &BenchArgs) -> KafkaConfig {
    let mut c = KafkaConfig::new(args.kafka_bootstrap.clone());
    // On a broker that answers a fetch only when the wait expires (tansu) this bounds every hop.
    c.fetch_wait_max = Duration::from_millis(args.kafka_fetch_wait_ms);
    if let Some(ms) = args.kafka_linger_ms {
        c.linger = Duration::from_millis(ms);
    }
    if let Some(n) = args.kafka_max_in_flight {
        c.max_in_flight = n.get();
    }
    // An unreachable broker fails the run within seconds, not the default 30.
    c.timeout = Duration::from_secs(10);
    // Consumers notice topics created meanwhile within half a second, not five.
    c.librdkafka.insert("topic.metadata.refresh.interval.ms".into(), "500".into());
    c
}

/// Fresh topics and a group-name prefix for one middle.
struct Topics {
    input: TopicName,
    output: TopicName,
    dlq: TopicName,
    group: String,
}

impl Topics {
    /// Names them and creates them on the broker.
    async fn fresh(config: &KafkaConfig) -> Result<Self, String> {
        let tenant = format!("bench{}", super::uuid_v7().simple());
        let t = |kind: &str| format!("onex.{tenant}.app.{kind}.v1").parse::<TopicName>().map_err(|e| format!("{e}"));
        let topics = Self { input: t("cmd")?, output: t("evt")?, dlq: t("dlq")?, group: format!("onex-{tenant}") };
        topics.create(config).await?;
        Ok(topics)
    }

    /// Creating the topics up front lets each consumer group join once: a group
    /// subscribed to a topic that appears later rebalances again (seconds on tansu).
    async fn create(&self, config: &KafkaConfig) -> Result<(), String> {
        let admin: AdminClient<DefaultClientContext> = client_config(&config.producer_properties())
            .create()
            .map_err(|e| format!("kafka: the admin client settings were rejected: {e}"))?;
        // Four partitions, as tansu creates topics by itself.
        let new: Vec<NewTopic<'_>> = [&self.input, &self.output, &self.dlq]
            .iter()
            .map(|t| NewTopic::new(t.as_str(), 4, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new().request_timeout(Some(config.timeout)).operation_timeout(Some(config.timeout));
        let created = tokio::time::timeout(config.timeout, admin.create_topics(&new, &options))
            .await
            .map_err(|_| format!("kafka: creating the benchmark topics took over {}s", config.timeout.as_secs()))?
            .map_err(|e| format!("kafka: creating the benchmark topics failed: {e}"))?;
        for result in created {
            if let Err((topic, code)) = result {
                return Err(format!("kafka: creating topic `{topic}` failed: {code}"));
            }
        }
        Ok(())
    }
}

/// What one scenario measured.
struct Run {
    elapsed: Duration,
    histogram: Histogram<u64>,
    failures: u64,
    n: u64,
}

impl Run {
    fn throughput(&self) -> f64 {
        self.n as f64 / self.elapsed.as_secs_f64()
    }
}

/// The client both middles are measured with.
struct Probe {
    client: Client,
    sender: Sender,
    input: TopicName,
}

impl Probe {
    async fn connect(bus: Arc<dyn EventBus>, t: &Topics) -> Result<Self, String> {
        let group = format!("{}-client", t.group);
        let client = Client::connect(bus, &group, std::slice::from_ref(&t.output), std::slice::from_ref(&t.dlq))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self { sender: client.sender(), client, input: t.input.clone() })
    }

    /// `n` round trips with `in_flight` outstanding, as `roundtrip` does on the
    /// memory bus; fails when no reply arrives for `patience`.
    async fn round_trips(
        &mut self,
        scenario: &str,
        n: u64,
        in_flight: usize,
        patience: Duration,
    ) -> Result<Run, String> {
        let mut histogram = histogram()?;
        let mut sent_at: HashMap<EnvelopeId, Instant> = HashMap::with_capacity(in_flight * 2);
        let mut next = super::requests(n).into_iter();
        // A Kafka publish waits for the broker's ack; running them as tasks keeps
        // `in_flight` requests outstanding instead of one ack at a time.
        let mut publishes: JoinSet<Result<(), onex_bus::BusError>> = JoinSet::new();
        let start = Instant::now();
        let mut progress = tokio::time::Instant::now();
        let (mut outstanding, mut done, mut failures) = (0usize, 0u64, 0u64);
        while done < n {
            while outstanding < in_flight {
                let Some((id, key, payload)) = next.next() else { break };
                sent_at.insert(id, Instant::now());
                let (sender, input) = (self.sender.clone(), self.input.clone());
                publishes.spawn(async move { sender.send_raw(&input, Some(key), payload).await });
                outstanding += 1;
            }
            let outcome = tokio::select! {
                Some(published) = publishes.join_next() => {
                    published
                        .map_err(|e| e.to_string())?
                        .map_err(|e| format!("{scenario}: publishing a request failed: {e}"))?;
                    continue;
                }
                outcome = self.client.next() => outcome,
                () = tokio::time::sleep_until(progress + patience) => {
                    return Err(format!(
                        "{scenario}: no reply for {}s after {done} of {n} round trips; is the broker up and the middle consuming?",
                        patience.as_secs()
                    ));
                }
            };
            match outcome {
                Some(Ok(Outcome::Response { envelope, .. })) => {
                    // The host's response names the request as its cause; the raw loop echoes the request itself.
                    let id = envelope.causation_id.unwrap_or(envelope.envelope_id);
                    // Not ours (a redelivery of an answered request): it does not count.
                    let Some(t) = sent_at.remove(&id) else { continue };
                    let _ = histogram.record(t.elapsed().as_nanos() as u64);
                    if envelope.success == Some(false) {
                        failures += 1;
                    }
                }
                Some(Ok(_)) => failures += 1,
                Some(Err(e)) => return Err(format!("{scenario}: {e}")),
                None => return Err(format!("{scenario}: the bus closed during the benchmark")),
            }
            progress = tokio::time::Instant::now();
            outstanding -= 1;
            done += 1;
        }
        let elapsed = start.elapsed();
        while let Some(published) = publishes.join_next().await {
            published
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("{scenario}: publishing a request failed: {e}"))?;
        }
        Ok(Run { elapsed, histogram, failures, n })
    }
}

/// The onex host on its own [`KafkaBus`], set up as `start_host` does on the memory bus.
async fn start_host(config: &KafkaConfig, t: &Topics, concurrency: NonZeroUsize) -> Result<RunningHost, String> {
    let bus: Arc<dyn EventBus> = Arc::new(KafkaBus::connect(config.clone()).await.map_err(|e| e.to_string())?);
    let local = Arc::new(LocalHandler::new(Environment::Dev).map_err(|e| e.to_string())?);
    let node = EffectNode::builder().route(Operation::new("local.echo"), local.clone()).build();
    RuntimeHost::builder()
        .bus(bus)
        .topics(t.input.clone(), t.output.clone())
        .dlq_topic(t.dlq.clone())
        .consumer_group(format!("{}-host", t.group))
        .handler("local", local)
        .node(NodeId::new("node0"), Arc::new(node), NodeOptions { concurrency, ..NodeOptions::default() })
        .build()
        .await
        .map_err(|e| e.to_string())?
        .start()
        .await
        .map_err(|e| e.to_string())
}

/// The bare consume → produce loop: one task echoes each request to the
/// output topic, another stores each request's offset (committed every
/// `commit_interval`) once its reply is acked, as the host does.
struct RawEcho {
    consumer: Arc<StreamConsumer>,
    echo: JoinHandle<Result<(), String>>,
    store: JoinHandle<Result<(), String>>,
}

/// A reply on its way to the broker, and the request it answers.
struct Pending {
    delivery: DeliveryFuture,
    partition: i32,
    offset: i64,
}

impl RawEcho {
    async fn start(config: &KafkaConfig, t: &Topics) -> Result<Self, String> {
        let producer: FutureProducer = client_config(&config.producer_properties())
            .create()
            .map_err(|e| format!("kafka_raw: the producer settings were rejected: {e}"))?;
        // Bounded, like `KafkaBus::connect`: an unreachable broker is an error, not a hang.
        let probe = producer.clone();
        let timeout = config.timeout;
        tokio::task::spawn_blocking(move || probe.client().fetch_metadata(None, timeout).map(|_| ()))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| {
                format!(
                    "kafka_raw: no Kafka broker at {} answered within {}s ({e})",
                    config.bootstrap_servers,
                    timeout.as_secs()
                )
            })?;
        let consumer: StreamConsumer = client_config(&config.consumer_properties(&format!("{}-raw", t.group)))
            .create()
            .map_err(|e| format!("kafka_raw: the consumer settings were rejected: {e}"))?;
        consumer.subscribe(&[t.input.as_str()]).map_err(|e| format!("kafka_raw: subscribing failed: {e}"))?;
        let consumer = Arc::new(consumer);
        // The client bounds what is in flight; the channel only needs to hold that.
        let (tx, rx) = mpsc::channel(1024);
        let echo = tokio::spawn(echo(Arc::clone(&consumer), producer, t.output.to_string(), tx));
        let store = tokio::spawn(store(Arc::clone(&consumer), t.input.to_string(), rx));
        Ok(Self { consumer, echo, store })
    }

    /// Stops both tasks and leaves the group; the error of a task that had failed.
    async fn stop(self) -> Result<(), String> {
        let ended = |t: &JoinHandle<Result<(), String>>| t.is_finished();
        let (echo_ended, store_ended) = (ended(&self.echo), ended(&self.store));
        self.echo.abort();
        self.store.abort();
        let echo = self.echo.await;
        let store = self.store.await;
        // Closing the consumer blocks on the network (it leaves the group).
        let consumer = self.consumer;
        let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
        for (ended, result) in [(echo_ended, echo), (store_ended, store)] {
            if let (true, Ok(Err(e))) = (ended, result) {
                return Err(e);
            }
        }
        Ok(())
    }
}

fn client_config(properties: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (k, v) in properties {
        config.set(k, v);
    }
    config
}

async fn echo(
    consumer: Arc<StreamConsumer>,
    producer: FutureProducer,
    output: String,
    pending: mpsc::Sender<Pending>,
) -> Result<(), String> {
    loop {
        let next = {
            let m = match consumer.recv().await {
                Ok(m) => m,
                // The input topic is created by the client's first publish.
                Err(e)
                    if matches!(
                        e.rdkafka_error_code(),
                        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(format!("kafka_raw: consuming failed: {e}")),
            };
            let mut record = FutureRecord::to(&output).payload(m.payload().unwrap_or_default());
            if let Some(key) = m.key() {
                record = record.key(key);
            }
            let delivery =
                producer.send_result(record).map_err(|(e, _)| format!("kafka_raw: producing failed: {e}"))?;
            Pending { delivery, partition: m.partition(), offset: m.offset() }
        };
        if pending.send(next).await.is_err() {
            return Ok(());
        }
    }
}

async fn store(
    consumer: Arc<StreamConsumer>,
    input: String,
    mut pending: mpsc::Receiver<Pending>,
) -> Result<(), String> {
    while let Some(p) = pending.recv().await {
        match p.delivery.await {
            Ok(Ok(_)) => {
                // Stores offset + 1, the next to read. It fails only for a partition revoked meanwhile.
                let _ = consumer.store_offset(&input, p.partition, p.offset);
            }
            Ok(Err((e, _))) => return Err(format!("kafka_raw: producing a reply failed: {e}")),
            Err(_) => return Err("kafka_raw: the producer stopped".into()),
        }
    }
    Ok(())
}
