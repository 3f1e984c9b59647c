//! The runtime host: consume, route, process, respond, ack.
//!
//! One consumer task owns the bus subscription. For each delivery it parses
//! the envelope, picks the node, and hands the work to one of the node's
//! *lanes*: a lane is a task with a small bounded queue, and an envelope's
//! lane is chosen by its partition key. So envelopes of one entity are
//! processed one at a time and in order, different entities run in
//! parallel up to the node's `concurrency`, and a busy node pushes back on
//! the consumer (bounded queues) instead of buffering without limit.
//!
//! Nothing is dropped silently: every delivery ends as exactly one response
//! envelope (success or error) or one dead-letter record, and it is acked
//! only after that outcome was published.

use std::hash::{BuildHasher, Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use onex_bus::{ConsumerGroup, Delivery, EventBus, Message, Receipt, Subscription};
use onex_core::{Clock, DeadLetter, Envelope, ErrorClass, ErrorCode, IdGen, NodeId, Timestamp, TopicName};
use onex_handlers::Handler;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span, debug, error, info, warn};

use crate::activity::{Activity, NodeCounters, Phase, RecentDeadLetter, RecentOutcome};
use crate::dispatch::{NodeIndex, Router};
use crate::metrics::{HostMetrics, InFlight, Malformed};
use crate::node::{Node, NodeOutcome};
use crate::telemetry;

/// How long shutdown waits for in-flight envelopes by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Envelopes queued per lane before the consumer waits. Small on purpose:
/// the bus holds the backlog, lanes only smooth out bursts.
const LANE_CAPACITY: usize = 8;

/// One hosted node and where its responses go.
#[derive(Debug)]
pub(crate) struct NodeEntry {
    pub(crate) id: NodeId,
    pub(crate) node: Arc<dyn Node>,
    pub(crate) publish_topic: TopicName,
    pub(crate) concurrency: NonZeroUsize,
    pub(crate) counters: NodeCounters,
}

/// One handler the host owns (shut down once, at the end).
#[derive(Debug)]
pub(crate) struct HandlerEntry {
    pub(crate) name: String,
    pub(crate) handler: Arc<dyn Handler>,
    /// Its resilience stack, when it is a contract binding (breaker, latency, last error).
    pub(crate) stack: Option<Arc<onex_handlers::ResilientHandler>>,
}

/// Counters of what the host did; read them with [`RunningHost::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    received: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    dead_lettered: AtomicU64,
    publish_errors: AtomicU64,
}

/// A snapshot of the host's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct HostStats {
    /// Deliveries taken from the bus.
    pub received: u64,
    /// Success responses published.
    pub succeeded: u64,
    /// Error responses published.
    pub failed: u64,
    /// Dead-letter records published.
    pub dead_lettered: u64,
    /// Outcomes that could not be published (their deliveries stay un-acked).
    pub publish_errors: u64,
}

/// Everything the consumer and the lanes share. Built once by the wiring.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) runtime_id: String,
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdGen>,
    pub(crate) nodes: Vec<NodeEntry>,
    pub(crate) router: Router,
    pub(crate) output_topic: TopicName,
    pub(crate) dlq_topic: TopicName,
    pub(crate) group: ConsumerGroup,
    pub(crate) handlers: Vec<HandlerEntry>,
    pub(crate) grace: Duration,
    pub(crate) counters: Counters,
    pub(crate) activity: Activity,
    pub(crate) metrics: HostMetrics,
}

/// Errors that stop a host from starting.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("contract is invalid ({} error(s)); run `onex validate` for details", .0.error_count())]
    Contract(onex_core::contract::Diagnostics),
    #[error("{0}")]
    Wiring(String),
    #[error("event bus: {0}")]
    Bus(#[from] onex_bus::BusError),
    #[error("handler: {0}")]
    Handler(#[from] onex_handlers::HandlerError),
}

/// A configured host, ready to start. Build one with [`RuntimeHost::builder`].
#[derive(Debug)]
pub struct RuntimeHost {
    pub(crate) shared: Arc<Shared>,
}

impl RuntimeHost {
    /// Starts building a host.
    pub fn builder() -> crate::RuntimeHostBuilder {
        crate::RuntimeHostBuilder::default()
    }

    /// Starts the admin server before the host consumes, so probes answer
    /// (`/health/startup` 503) from the first moment. See [`RunningHost::serve_admin`].
    ///
    /// # Errors
    /// [`HostError::Wiring`] when the address cannot be bound, with the fix.
    pub async fn serve_admin(&self, spec: &onex_core::contract::AdminSpec) -> Result<crate::AdminServer, HostError> {
        crate::AdminServer::start(spec, Arc::clone(&self.shared)).await
    }

    /// Subscribes to every input topic and starts consuming.
    ///
    /// When this returns, the subscription exists: envelopes published from
    /// now on will be processed.
    ///
    /// # Errors
    /// [`HostError::Bus`] when the subscription fails.
    pub async fn start(self) -> Result<RunningHost, HostError> {
        let shared = self.shared;
        let topics = shared.router.topics();
        let subscription = shared.bus.subscribe(&shared.group, &topics).await?;
        info!(
            runtime_id = %shared.runtime_id,
            nodes = shared.nodes.len(),
            topics = %topics.iter().map(TopicName::as_str).collect::<Vec<_>>().join(","),
            "Runtime host started."
        );
        let cancel = CancellationToken::new();
        shared.activity.set_phase(Phase::Ready);
        let task = tokio::spawn(consume(Arc::clone(&shared), subscription, cancel.clone()));
        Ok(RunningHost { shared, cancel, task })
    }
}

/// How a shutdown ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Counters at the end.
    pub stats: HostStats,
    /// Whether every in-flight envelope finished within the grace period.
    pub drained: bool,
}

/// A running host. Dropping it does not stop it; call [`RunningHost::shutdown`].
#[derive(Debug)]
pub struct RunningHost {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<bool>,
}

impl RunningHost {
    /// The bus this host consumes from and publishes to.
    pub fn bus(&self) -> &Arc<dyn EventBus> {
        &self.shared.bus
    }

    /// Topics the host consumes.
    pub fn input_topics(&self) -> Vec<TopicName> {
        self.shared.router.topics()
    }

    /// The default output topic.
    pub fn output_topic(&self) -> &TopicName {
        &self.shared.output_topic
    }

    /// Every topic responses may go to: each node's publish topic and the default output topic.
    pub fn output_topics(&self) -> Vec<TopicName> {
        let mut t: Vec<TopicName> = self.shared.nodes.iter().map(|n| n.publish_topic.clone()).collect();
        t.push(self.shared.output_topic.clone());
        t.sort();
        t.dedup();
        t
    }

    /// Where dead letters go.
    pub fn dlq_topic(&self) -> &TopicName {
        &self.shared.dlq_topic
    }

    /// Current counters.
    pub fn stats(&self) -> HostStats {
        self.shared.stats()
    }

    /// The process's metrics in the Prometheus text format (`GET /metrics`), with
    /// this host's scrape-time values (breakers, bus lag, in-flight) refreshed first.
    pub fn metrics_text(&self) -> String {
        self.shared.metrics_text()
    }

    /// Stops consuming, lets in-flight envelopes finish within the grace
    /// period, then shuts down every node and handler exactly once.
    pub async fn shutdown(self) -> ShutdownReport {
        // Readiness goes first, so a load balancer stops sending before consumption stops.
        self.shared.activity.set_phase(Phase::Draining);
        info!(
            runtime_id = %self.shared.runtime_id,
            in_flight = self.shared.activity.in_flight_count(),
            grace_seconds = self.shared.grace.as_secs_f64(),
            "Draining: readiness is now 503, no new envelopes are taken."
        );
        self.cancel.cancel();
        let drained = match self.task.await {
            Ok(drained) => drained,
            Err(e) => {
                error!(error = %e, "Consumer task failed.");
                false
            }
        };
        self.shared.activity.set_phase(Phase::Stopped);
        ShutdownReport { stats: self.shared.stats(), drained }
    }

    /// Where the host is in its life (readiness is [`Phase::Ready`] only).
    pub fn phase(&self) -> Phase {
        self.shared.activity.phase()
    }

    /// Starts the admin server (probes, metrics, status API, dashboard) as `spec` says.
    ///
    /// # Errors
    /// [`HostError::Wiring`] when the address cannot be bound, with the fix.
    pub async fn serve_admin(&self, spec: &onex_core::contract::AdminSpec) -> Result<crate::AdminServer, HostError> {
        crate::AdminServer::start(spec, Arc::clone(&self.shared)).await
    }

    /// Everything operators ask about: phase, readiness, counters, nodes,
    /// handlers (health, breaker, latency), bus lag, recent outcomes.
    pub async fn status(&self) -> crate::RuntimeStatus {
        self.shared.status().await
    }
}

impl Shared {
    /// See [`RunningHost::metrics_text`]; the admin server's `/metrics`.
    pub(crate) fn metrics_text(&self) -> String {
        self.metrics.refresh(self.stats(), &*self.bus);
        crate::metrics::render()
    }

    pub(crate) fn stats(&self) -> HostStats {
        let c = &self.counters;
        HostStats {
            received: c.received.load(Ordering::Relaxed),
            succeeded: c.succeeded.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
            publish_errors: c.publish_errors.load(Ordering::Relaxed),
        }
    }

    /// Publishes the outcome of `envelope` (and its dead-letter record when the
    /// outcome asks for one), then acks its delivery.
    /// `stop` as for [`Shared::publish`].
    async fn respond(
        &self,
        node: Option<NodeIndex>,
        work: &Work,
        outcome: NodeOutcome,
        started: Timestamp,
        stop: Option<&CancellationToken>,
    ) {
        let envelope = &work.envelope;
        let success = outcome.result.is_ok();
        let entry = node.and_then(|i| self.nodes.get(i));
        let source = entry.map(|e| &e.id);
        let topic = entry.map_or(&self.output_topic, |e| &e.publish_topic);
        let (mut response, counter) = match outcome.result {
            Ok(payload) => {
                (envelope.success_response(&*self.ids, &*self.clock, source, payload), &self.counters.succeeded)
            }
            Err(err) => {
                telemetry::mark_failed(&work.span);
                let err = err.with_correlation_id(envelope.correlation().0);
                // The envelope span carries envelope_id and the rest.
                debug!(code = %err.code, attempts = err.attempts, "Envelope failed.");
                if outcome.dead_letter {
                    let failure = Failure {
                        code: err.code,
                        class: err.class,
                        reason: err.message.clone(),
                        attempts: outcome.attempts,
                        first_failure_at: started,
                        error_response_sent: true,
                    };
                    let record = self.dead_letter_record(&work.delivery, Some(envelope), failure);
                    if !self.publish(record, Some(envelope), stop).await {
                        return;
                    }
                    self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    if let Some(e) = entry {
                        e.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    }
                    self.metrics.dead_lettered(node, &err);
                }
                (envelope.error_response(&*self.ids, &*self.clock, source, &err), &self.counters.failed)
            }
        };
        // Retries made for this envelope so far, this runtime's included.
        response.metadata.retry_count =
            envelope.metadata.retry_count.saturating_add(outcome.attempts.saturating_sub(1));
        telemetry::propagate(work.trace, &mut response.metadata);
        let key = Bytes::from(envelope.partition_key());
        let mut message = Message::new(topic.clone(), Some(key), Bytes::from(response.to_json()));
        if self.bus.carries_headers() {
            message.headers =
                response.transport_headers().into_iter().map(|(k, v)| (k.to_owned(), Bytes::from(v))).collect();
        }
        if self.publish(message, Some(envelope), stop).await {
            counter.fetch_add(1, Ordering::Relaxed);
            self.metrics.processed(node, success);
            self.ack(&work.delivery.receipt, Some(envelope)).await;
            self.finished(entry, envelope, &response);
        }
    }

    /// Books a published outcome: per-node counts, in flight, recent outcomes.
    fn finished(&self, entry: Option<&NodeEntry>, request: &Envelope, response: &Envelope) {
        let duration = self.activity.finished(&request.envelope_id).unwrap_or_default();
        let ok = response.success == Some(true);
        if let Some(e) = entry {
            let c = if ok { &e.counters.succeeded } else { &e.counters.failed };
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.activity.record(RecentOutcome {
            envelope_id: request.envelope_id,
            operation: request.operation.as_ref().map(ToString::to_string),
            node: entry.map(|e| e.id.to_string()),
            outcome: if ok { "success" } else { "error" },
            code: response.error.as_ref().map(|e| e.code.to_string()),
            finished_at: self.clock.now(),
            duration_ms: duration.as_secs_f64() * 1000.0,
        });
    }

    /// Sends an unprocessable delivery to the DLQ and acks it. Gives up when `stop` fires.
    async fn dead_letter(
        &self,
        delivery: &Delivery,
        code: ErrorCode,
        reason: String,
        envelope: Option<&Envelope>,
        stop: &CancellationToken,
    ) {
        let receipt = &delivery.receipt;
        warn!(
            topic = %receipt.topic, partition = receipt.partition, offset = receipt.offset,
            code = %code, reason = %reason, "Dead-lettering message."
        );
        let failure = Failure {
            code,
            class: ErrorClass::Permanent,
            reason,
            attempts: 0,
            first_failure_at: self.clock.now(),
            error_response_sent: false,
        };
        let record = self.dead_letter_record(delivery, envelope, failure);
        if self.publish(record, envelope, Some(stop)).await {
            self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
            self.metrics.invalid_dead_lettered();
            self.ack(receipt, envelope).await;
        }
    }

    fn dead_letter_record(&self, delivery: &Delivery, envelope: Option<&Envelope>, failure: Failure) -> Message {
        let receipt = &delivery.receipt;
        let record = DeadLetter {
            reason: failure.reason,
            error_code: failure.code,
            error_class: failure.class,
            original_topic: receipt.topic.to_string(),
            partition: receipt.partition,
            offset: receipt.offset,
            envelope_id: envelope.map(|e| e.envelope_id),
            correlation_id: envelope.map(Envelope::correlation),
            attempts: failure.attempts,
            error_response_sent: failure.error_response_sent,
            first_failure_at: failure.first_failure_at,
            last_failure_at: self.clock.now(),
            original_payload: None,
            original_payload_hex: None,
        }
        .with_original(&delivery.message.payload);
        self.activity.record_dead(RecentDeadLetter {
            envelope_id: record.envelope_id,
            original_topic: record.original_topic.clone(),
            partition: record.partition,
            offset: record.offset,
            code: record.error_code.to_string(),
            reason: record.reason.clone(),
            at: record.last_failure_at,
        });
        // A record of plain strings, numbers and timestamps always serializes.
        let payload = serde_json::to_vec(&record).unwrap_or_default();
        Message::new(self.dlq_topic.clone(), delivery.message.key.clone(), Bytes::from(payload))
    }

    /// Publishes one outcome message, retrying with backoff while the bus fails
    /// (a broker outage must not turn into lost or skipped envelopes). Returns
    /// false, leaving the delivery un-acked so it is delivered again, only
    /// when the bus is closed or `stop` fires. Lanes pass no `stop`: at the end of
    /// the shutdown grace period their tasks are aborted instead.
    async fn publish(&self, message: Message, envelope: Option<&Envelope>, stop: Option<&CancellationToken>) -> bool {
        let mut backoff = Backoff::default();
        loop {
            let e = match self.bus.publish(message.clone()).await {
                Ok(()) => return true,
                Err(e) => e,
            };
            self.counters.publish_errors.fetch_add(1, Ordering::Relaxed);
            let id = envelope.map(|e| e.envelope_id.to_string()).unwrap_or_default();
            if matches!(e, onex_bus::BusError::Closed) {
                error!(envelope_id = %id, error = %e, "Could not publish outcome; the envelope stays unacknowledged.");
                return false;
            }
            let delay = backoff.next_delay();
            if backoff.first() {
                error!(envelope_id = %id, error = %e, retry_in_ms = delay.as_millis() as u64, "Could not publish outcome; retrying until the bus takes it.");
            } else {
                debug!(envelope_id = %id, error = %e, retry_in_ms = delay.as_millis() as u64, "Publishing outcome failed again.");
            }
            match stop {
                Some(stop) => tokio::select! {
                    () = stop.cancelled() => return false,
                    () = tokio::time::sleep(delay) => {}
                },
                None => tokio::time::sleep(delay).await,
            }
        }
    }

    /// Acks a delivery whose outcome is published.
    async fn ack(&self, receipt: &Receipt, envelope: Option<&Envelope>) {
        if let Err(e) = self.bus.ack(receipt).await {
            let id = envelope.map(|e| e.envelope_id.to_string()).unwrap_or_default();
            warn!(envelope_id = %id, error = %e, "Could not acknowledge delivery; it may be processed again.");
        }
    }
}

/// Exponential backoff for bus failures: 50 ms doubling up to 5 s.
#[derive(Debug, Default)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(5);

    fn next_delay(&mut self) -> Duration {
        let d = Self::FIRST.saturating_mul(1 << self.attempt.min(7)).min(Self::MAX);
        self.attempt = self.attempt.saturating_add(1);
        d
    }

    /// Whether the delay just handed out was the first.
    fn first(&self) -> bool {
        self.attempt == 1
    }
}

/// Why a delivery is dead-lettered; becomes a [`DeadLetter`] record.
struct Failure {
    code: ErrorCode,
    class: ErrorClass,
    reason: String,
    attempts: u32,
    first_failure_at: Timestamp,
    error_response_sent: bool,
}

/// One envelope on its way to a node.
struct Work {
    envelope: Envelope,
    /// The delivery it came in: its receipt, and the original bytes for a dead-letter record.
    delivery: Delivery,
    _in_flight: InFlight,
    /// The `envelope` span: from routing to the published outcome.
    span: Span,
    /// Its place in a trace, for the response's `traceparent`.
    trace: telemetry::TraceContext,
}

/// The consumer loop. Returns whether everything in flight finished in time.
async fn consume(shared: Arc<Shared>, mut subscription: Box<dyn Subscription>, cancel: CancellationToken) -> bool {
    let mut lanes: Vec<Vec<Option<mpsc::Sender<Work>>>> =
        shared.nodes.iter().map(|n| vec![None; n.concurrency.get()]).collect();
    let mut tasks = JoinSet::new();
    let mut backoff = Backoff::default();
    loop {
        let next = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            next = subscription.next() => next,
        };
        let delivery = match next {
            None => break,
            Some(Ok(delivery)) => {
                backoff = Backoff::default();
                delivery
            }
            Some(Err(e)) => {
                shared.metrics.receive_error();
                // E.g. the broker is unreachable: wait instead of spinning on the error.
                let delay = backoff.next_delay();
                warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "Receiving from the bus failed; retrying.");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(delay) => continue,
                }
            }
        };
        shared.counters.received.fetch_add(1, Ordering::Relaxed);
        let in_flight = InFlight::enter();
        let envelope = match Envelope::from_json(&delivery.message.payload) {
            Ok(envelope) => envelope,
            Err(e) => {
                shared.metrics.malformed(Malformed::InvalidEnvelope);
                let reason = format!("{e}; {}", e.hint());
                shared.dead_letter(&delivery, ErrorCode::EnvelopeValidation, reason, None, &cancel).await;
                continue;
            }
        };
        if envelope.is_response {
            shared.metrics.malformed(Malformed::ResponseOnCommandTopic);
            let reason = format!(
                "a response envelope arrived on command topic `{}`; responses belong on output topics (this prevents loops)",
                delivery.receipt.topic
            );
            shared.dead_letter(&delivery, ErrorCode::EnvelopeValidation, reason, Some(&envelope), &cancel).await;
            continue;
        }
        let route = shared.router.route(&delivery.receipt.topic, &envelope);
        let node_id = route.as_ref().ok().map(|&i| &shared.nodes[i].id);
        let (span, trace) = telemetry::envelope_span(&shared.runtime_id, node_id, &envelope);
        let node = match route {
            Ok(node) => node,
            Err(err) => {
                shared.metrics.unroutable();
                let work = Work { envelope, delivery, _in_flight: in_flight, span, trace };
                let outcome = NodeOutcome { result: Err(err.with_attempts(0)), attempts: 0, dead_letter: false };
                let respond = shared.respond(None, &work, outcome, shared.clock.now(), Some(&cancel));
                respond.instrument(work.span.clone()).await;
                continue;
            }
        };
        shared.metrics.received(node);
        let lane = lane_of(&envelope, shared.nodes[node].concurrency.get());
        shared.nodes[node].counters.received.fetch_add(1, Ordering::Relaxed);
        shared.activity.dispatched(envelope.envelope_id, node);
        let mut work = Work { envelope, delivery, _in_flight: in_flight, span, trace };
        // Retry once on a fresh lane if the old one is gone (its task ended abnormally).
        for _ in 0..2 {
            let sender = lanes[node][lane].get_or_insert_with(|| spawn_lane(&shared, node, &mut tasks)).clone();
            match sender.send(work).await {
                Ok(()) => break,
                Err(mpsc::error::SendError(back)) => {
                    error!(node_id = %shared.nodes[node].id, lane, "Lane stopped unexpectedly; starting a new one.");
                    lanes[node][lane] = None;
                    work = back;
                }
            }
        }
    }
    debug!("Consumer stopped; draining lanes.");
    drop(lanes);
    let drained = tokio::time::timeout(shared.grace, async {
        while let Some(res) = tasks.join_next().await {
            if let Err(e) = res {
                error!(error = %e, "Lane task failed.");
            }
        }
    })
    .await
    .is_ok();
    if !drained {
        let names = |i: usize| shared.nodes.get(i).map(|n| n.id.to_string()).unwrap_or_default();
        let left = shared.activity.in_flight(&names);
        let ids: Vec<String> = left.iter().map(|f| format!("{} ({})", f.envelope_id, f.node)).collect();
        error!(
            unfinished = left.len(),
            envelope_ids = %ids.join(", "),
            grace_seconds = shared.grace.as_secs_f64(),
            "Shutdown grace period elapsed with envelopes in flight; they are not acknowledged and will be delivered again."
        );
        tasks.abort_all();
    }
    // Commit what finished and leave the consumer group before handlers go away.
    subscription.close().await;
    for entry in &shared.nodes {
        entry.node.shutdown().await;
    }
    for HandlerEntry { name, handler, .. } in &shared.handlers {
        debug!(handler = %name, "Shutting down handler.");
        handler.shutdown().await;
    }
    info!(runtime_id = %shared.runtime_id, "Runtime host stopped.");
    drained
}

fn spawn_lane(shared: &Arc<Shared>, node: NodeIndex, tasks: &mut JoinSet<()>) -> mpsc::Sender<Work> {
    let (tx, mut rx) = mpsc::channel::<Work>(LANE_CAPACITY);
    let shared = Arc::clone(shared);
    tasks.spawn(async move {
        while let Some(work) = rx.recv().await {
            let span = work.span.clone();
            async {
                let started = shared.clock.now();
                let outcome = shared.nodes[node].node.run(&work.envelope).await;
                shared.respond(Some(node), &work, outcome, started, None).await;
            }
            .instrument(span)
            .await;
        }
    });
    tx
}

/// The lane of an envelope: a stable function of its partition key.
fn lane_of(envelope: &Envelope, lanes: usize) -> usize {
    if lanes <= 1 {
        return 0;
    }
    let mut h = std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().build_hasher();
    match &envelope.metadata.partition_key {
        Some(k) => k.hash(&mut h),
        None => envelope.correlation().hash(&mut h),
    }
    // Truncation is fine: we only need a spread over `lanes` buckets.
    (h.finish() % lanes as u64) as usize
}
