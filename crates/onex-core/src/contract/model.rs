//! The validated contract model: what the runtime executes.
//!
//! These types are the *output* of loading. They hold only checked values:
//! topics are [`TopicName`]s, durations are [`Duration`]s, paths are
//! resolved. Everything the YAML may spell in several ways (v0.1 vs v0.2,
//! `type` vs `handler_type`, upper- vs lower-case node types) is normalised
//! before it gets here.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::envelope::{NodeId, Operation};
use crate::topic::{TopicConvention, TopicName};

/// Runtime contract format versions onex reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractVersion {
    /// MVP contracts (seed 000); loaded with a deprecation warning per deprecated field.
    V0_1,
    /// Beta contracts (seed 000); the current format.
    V0_2,
}

impl ContractVersion {
    /// Versions this build can load, as written in contracts.
    pub const SUPPORTED: [&'static str; 2] = ["0.1", "0.2"];

    /// The version as written in contracts.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V0_1 => "0.1",
            Self::V0_2 => "0.2",
        }
    }
}

/// Where the runtime runs. `prod` refuses dev-only handlers such as `local`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Environment {
    #[default]
    Dev,
    Staging,
    Prod,
}

impl Environment {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Staging => "staging",
            Self::Prod => "prod",
        }
    }
}

/// A loaded, validated runtime contract.
#[derive(Debug, Clone)]
pub struct RuntimeContract {
    pub version: ContractVersion,
    /// The file it was loaded from.
    pub source: PathBuf,
    pub runtime: RuntimeSettings,
    pub event_bus: EventBusSpec,
    pub handlers: Vec<HandlerBinding>,
    pub nodes: Vec<NodeSpec>,
}

/// `runtime.name`, `runtime.version`, `runtime.environment`, `runtime.topic_convention`,
/// and the operational settings `admin`, `observability`, `shutdown_grace_seconds`.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    pub name: String,
    pub version: Option<String>,
    pub environment: Environment,
    pub topic_convention: TopicConvention,
    pub admin: AdminSpec,
    pub observability: ObservabilitySpec,
    /// How long a shutdown waits for in-flight envelopes (default 30 s).
    pub shutdown_grace: std::time::Duration,
}

/// `runtime.admin`: the admin HTTP server (health, metrics, dashboard).
#[derive(Clone, PartialEq, Eq)]
pub struct AdminSpec {
    /// Default true.
    pub enabled: bool,
    /// Default 127.0.0.1: other hosts cannot reach it unless told otherwise.
    pub address: std::net::IpAddr,
    /// Default 8080; 0 picks a free port.
    pub port: u16,
    /// Bearer token required for everything but `/health/*`, when set.
    pub token: Option<String>,
}

impl std::fmt::Debug for AdminSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSpec")
            .field("enabled", &self.enabled)
            .field("address", &self.address)
            .field("port", &self.port)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl Default for AdminSpec {
    fn default() -> Self {
        Self { enabled: true, address: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), port: 8080, token: None }
    }
}

/// `runtime.observability`: logs and traces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservabilitySpec {
    /// A `RUST_LOG`-style filter, e.g. `info` or `info,onex_bus=debug` (`RUST_LOG` wins).
    pub log_level: Option<String>,
    /// OTLP/HTTP endpoint traces are exported to, e.g. `http://127.0.0.1:4318`.
    pub otlp_endpoint: Option<String>,
}

/// Which bus backend to connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusKind {
    /// In-process bus (the embedded default).
    Memory,
    /// Apache Kafka or a Kafka-protocol broker.
    Kafka,
}

/// `runtime.event_bus`.
#[derive(Debug, Clone)]
pub struct EventBusSpec {
    pub kind: BusKind,
    /// Topics consumed by nodes that do not name their own (one or more).
    pub input_topics: Vec<TopicName>,
    /// Where responses go for nodes that do not name their own output.
    pub output_topic: TopicName,
    /// Where unparseable or dead envelopes go. Defaults to the input topic's
    /// tenant/domain with direction `dlq`, e.g. `onex.acme.orders.dlq.v1`.
    pub dlq_topic: TopicName,
    /// Consumer group of this runtime (default: the runtime name).
    pub consumer_group: String,
    pub memory: MemoryBusSpec,
    /// Backend-specific settings (`event_bus.config` minus `topics`), kept for the Kafka bus.
    pub backend_config: Map<String, Value>,
}

/// Settings of the in-memory bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBusSpec {
    /// Messages buffered per partition per consumer group before publishers wait. Default 1024.
    pub queue_capacity: NonZeroUsize,
    /// Partitions per topic. Default 4.
    pub partitions: NonZeroUsize,
    /// Messages kept per topic for inspection (`onex tail`, dashboard). Default 1000 (seed 004).
    pub history: usize,
}

impl Default for MemoryBusSpec {
    fn default() -> Self {
        Self {
            queue_capacity: NonZeroUsize::MIN.saturating_add(1023),
            partitions: NonZeroUsize::MIN.saturating_add(3),
            history: 1000,
        }
    }
}

/// Handler types onex knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HandlerType {
    Local,
    Http,
    Db,
    Vault,
    Consul,
}

impl HandlerType {
    pub const ALL: [HandlerType; 5] = [Self::Local, Self::Http, Self::Db, Self::Vault, Self::Consul];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Http => "http",
            Self::Db => "db",
            Self::Vault => "vault",
            Self::Consul => "consul",
        }
    }

    /// Parses a handler type as contracts spell it (`db`, `DB`, `postgresql`, …).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "local" => Self::Local,
            "http" => Self::Http,
            "db" | "postgres" | "postgresql" => Self::Db,
            "vault" => Self::Vault,
            "consul" => Self::Consul,
            _ => return None,
        })
    }
}

/// Backoff between retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backoff {
    /// Every retry waits `base_delay`.
    Fixed,
    /// Retry `n` waits `base_delay * 2^(n-1)`, capped at `max_delay`.
    #[default]
    Exponential,
}

/// Retries after the first attempt. Seed 000, `ModelRetryPolicy.max_retries`.
pub const fn default_max_retries() -> u32 {
    3
}
/// Seed 000, `ModelRetryPolicy.base_delay_ms`.
pub const fn default_base_delay() -> Duration {
    Duration::from_millis(100)
}
/// Seed 000, `ModelRetryPolicy.max_delay_ms`.
pub const fn default_max_delay() -> Duration {
    Duration::from_millis(5000)
}
/// Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): spreads
/// the retries of many envelopes that failed together, so they do not return in lockstep.
pub const fn default_jitter() -> f64 {
    1.0
}
/// Per-attempt timeout. Seed 000, `ModelHandlerBindingConfig.timeout_ms`.
pub const fn default_timeout() -> Duration {
    Duration::from_millis(30_000)
}

/// `retry_policy` of a handler binding (seed 000 defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt. Default 3, so at most 4 attempts.
    pub max_retries: u32,
    /// Default exponential.
    pub backoff: Backoff,
    /// Delay before the first retry. Default 100 ms.
    pub base_delay: Duration,
    /// Cap on any one delay, jitter included. Default 5000 ms; never less than `base_delay`.
    pub max_delay: Duration,
    /// How much of each delay is randomised, `0.0..=1.0`: a delay `d` becomes a
    /// uniform draw from `[d * (1 - jitter), d]`. `1.0` (YAML `true`, the default)
    /// is full jitter; `0.0` (YAML `false`) is no jitter. Jitter only ever
    /// shortens a delay, so `max_delay` stays a hard cap.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: default_max_retries(),
            backoff: Backoff::Exponential,
            base_delay: default_base_delay(),
            max_delay: default_max_delay(),
            jitter: default_jitter(),
        }
    }
}

/// Consecutive failures that open the breaker. Seed 000, `circuit_breaker_threshold`.
pub const fn default_failure_threshold() -> NonZeroU32 {
    NonZeroU32::MIN.saturating_add(4)
}
/// Calls in the failure-rate window. resilience4j uses 100; 20 reacts faster at
/// the call rates of one handler binding while still averaging over a few envelopes.
pub const fn default_sliding_window_size() -> NonZeroU32 {
    NonZeroU32::MIN.saturating_add(19)
}
/// Calls the window must hold before the failure rate is judged; half the default
/// window, so that two failures out of two calls never trip on rate alone.
pub const fn default_minimum_calls() -> NonZeroU32 {
    NonZeroU32::MIN.saturating_add(9)
}
/// How long an open breaker refuses calls before letting probes through.
/// 30 s, as Envoy's `base_ejection_time`; see docs/resilience.md for why this does
/// not delay tripping (seed 000: "circuit breaker trigger < 10 s").
pub const fn default_wait_in_open() -> Duration {
    Duration::from_millis(30_000)
}
/// Probe calls admitted while half-open (Polly and resilience4j's default of one in spirit).
pub const fn default_permitted_calls_in_half_open() -> NonZeroU32 {
    NonZeroU32::MIN
}

/// `circuit_breaker` of a handler binding: one breaker per binding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitBreakerPolicy {
    /// Default true.
    pub enabled: bool,
    /// Consecutive failed calls that open the breaker. Default 5.
    pub failure_threshold: NonZeroU32,
    /// Failure rate in percent, `(0, 100]`, over the last `sliding_window_size`
    /// calls that opens the breaker. Default: none (only consecutive failures trip).
    pub failure_rate_threshold: Option<f64>,
    /// Calls in the failure-rate window. Default 20.
    pub sliding_window_size: NonZeroU32,
    /// Calls recorded before the failure rate is judged. Default 10; at most `sliding_window_size`.
    pub minimum_calls: NonZeroU32,
    /// Time spent open before probes are admitted. Default 30 s.
    pub wait_in_open: Duration,
    /// Probe calls admitted while half-open; all must succeed to close. Default 1.
    pub permitted_calls_in_half_open: NonZeroU32,
    /// A call slower than this counts as a failure even if it succeeded. Default: none.
    pub slow_call_threshold: Option<Duration>,
}

impl Default for CircuitBreakerPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            failure_threshold: default_failure_threshold(),
            failure_rate_threshold: None,
            sliding_window_size: default_sliding_window_size(),
            minimum_calls: default_minimum_calls(),
            wait_in_open: default_wait_in_open(),
            permitted_calls_in_half_open: default_permitted_calls_in_half_open(),
            slow_call_threshold: None,
        }
    }
}

/// What a call does when the rate limit has no token for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateLimitMode {
    /// Wait for a token, at most until the envelope's deadline (and never longer
    /// than `timeout_ms`); fail as `RATE_LIMITED` if the wait would be longer.
    #[default]
    Wait,
    /// Fail at once as `RATE_LIMITED` (class rejected).
    Reject,
}

/// `rate_limit_per_second`, `rate_limit_burst`, `rate_limit_mode` of a handler binding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitPolicy {
    /// Sustained calls per second (token refill rate), greater than 0.
    pub per_second: f64,
    /// Calls admitted at once after a quiet period (bucket size).
    /// Default: one second's worth, `ceil(per_second)`, at least 1.
    pub burst: NonZeroU32,
    /// Default `wait`.
    pub mode: RateLimitMode,
}

/// One second's worth of calls, at least one: the bucket governor builds from `Quota::per_second`.
pub fn default_rate_limit_burst(per_second: f64) -> NonZeroU32 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "clamped to 1..=u32::MAX first")]
    let n = per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32;
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// Why a failed call ended, as far as dead-lettering is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadLetterCause {
    /// Transient failures used up the retry budget.
    RetriesExhausted,
    /// The handler failed in a way that will repeat (bad input, 4xx).
    Permanent,
    /// A concurrent write won.
    Conflict,
    /// The binding's circuit breaker was open.
    CircuitOpen,
    /// The binding's rate limit refused the call.
    RateLimited,
    /// The envelope's deadline passed.
    DeadlineExceeded,
    /// Any other refusal by policy.
    Rejected,
}

impl DeadLetterCause {
    /// Every cause, in the order documented.
    pub const ALL: [Self; 7] = [
        Self::RetriesExhausted,
        Self::Permanent,
        Self::Conflict,
        Self::CircuitOpen,
        Self::RateLimited,
        Self::DeadlineExceeded,
        Self::Rejected,
    ];

    /// The contract spelling, also the `reason` label of `onex_envelopes_dead_lettered_total`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RetriesExhausted => "retries_exhausted",
            Self::Permanent => "permanent",
            Self::Conflict => "conflict",
            Self::CircuitOpen => "circuit_open",
            Self::RateLimited => "rate_limited",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::Rejected => "rejected",
        }
    }

    /// Parses the contract spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// `dead_letter_on`: which failures send the envelope to the DLQ topic, besides
/// the error response every failure gets.
///
/// Default `[retries_exhausted, permanent]`: those envelopes need an operator
/// (or a replay once the dependency is back). Refusals by policy (open breaker,
/// rate limit, deadline) are load shedding: the caller gets an error response
/// with class `rejected` and decides; dead-lettering them would flood the DLQ
/// during exactly the outage an operator is busy with.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeadLetterPolicy {
    bits: u8,
}

impl DeadLetterPolicy {
    /// Dead-letters nothing.
    pub const NONE: Self = Self { bits: 0 };

    /// The policy holding exactly `causes`.
    pub fn of(causes: impl IntoIterator<Item = DeadLetterCause>) -> Self {
        Self { bits: causes.into_iter().fold(0, |bits, c| bits | c.bit()) }
    }

    /// Whether a failure with `cause` goes to the DLQ.
    pub const fn applies_to(self, cause: DeadLetterCause) -> bool {
        self.bits & cause.bit() != 0
    }

    /// The causes in this policy, in documented order.
    pub fn causes(self) -> impl Iterator<Item = DeadLetterCause> {
        DeadLetterCause::ALL.into_iter().filter(move |c| self.applies_to(*c))
    }
}

impl Default for DeadLetterPolicy {
    fn default() -> Self {
        Self::of([DeadLetterCause::RetriesExhausted, DeadLetterCause::Permanent])
    }
}

impl std::fmt::Debug for DeadLetterPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.causes().map(DeadLetterCause::as_str)).finish()
    }
}

/// One entry of `runtime.handlers` (seed 000's handler binding).
#[derive(Debug, Clone)]
pub struct HandlerBinding {
    pub handler_type: HandlerType,
    /// Unique per runtime; defaults to the handler type.
    pub name: String,
    pub enabled: bool,
    pub priority: i32,
    /// Handler-specific settings (`config`), after `${VAR}` interpolation.
    pub config: Map<String, Value>,
    /// An extra YAML file merged under `config` (resolved path).
    pub config_ref: Option<PathBuf>,
    pub retry_policy: RetryPolicy,
    /// Per-attempt timeout. Default 30 s.
    pub timeout: Duration,
    /// Token bucket in front of the handler. Default: none (unlimited).
    pub rate_limit: Option<RateLimitPolicy>,
    pub circuit_breaker: CircuitBreakerPolicy,
    /// Which failures are dead-lettered. Default retries exhausted and permanent.
    pub dead_letter_on: DeadLetterPolicy,
    /// Where the binding and each top-level `config` key are written, for
    /// diagnostics found after loading (secrets, typed handler config).
    pub source: BindingSource,
}

impl HandlerBinding {
    /// A binding with every default of seed 000 and an empty config.
    pub fn new(handler_type: HandlerType, name: impl Into<String>) -> Self {
        Self {
            handler_type,
            name: name.into(),
            enabled: true,
            priority: 0,
            config: Map::new(),
            config_ref: None,
            retry_policy: RetryPolicy::default(),
            timeout: default_timeout(),
            rate_limit: None,
            circuit_breaker: CircuitBreakerPolicy::default(),
            dead_letter_on: DeadLetterPolicy::default(),
            source: BindingSource::default(),
        }
    }
}

/// Source positions of a handler binding (1-based; 0 when built in code).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindingSource {
    pub line: usize,
    pub column: usize,
    /// Line and column of each top-level key under `config`.
    pub config_keys: std::collections::BTreeMap<String, (usize, usize)>,
}

/// One node hosted by the runtime.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub slug: NodeId,
    /// The node contract file, if the node came from one.
    pub contract_file: Option<PathBuf>,
    /// Envelopes processed at once by this node. Default 64.
    pub concurrency: NonZeroUsize,
    /// Topics this node consumes (node contract `event_bus.subscribe_topics`, else the runtime's input topics).
    pub subscribe_topics: Vec<TopicName>,
    /// Where this node's responses go (node contract `publish_topics[0]`, else the runtime's output topic).
    pub publish_topic: TopicName,
    pub kind: NodeKind,
    pub description: Option<String>,
}

/// What a node does with an envelope.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// Routes each operation to a handler (`handler_routing`).
    Effect { routes: Vec<Route> },
    /// Transforms the payload with a jq expression (`onex.compute.jq`).
    Compute { jq: String, operations: Vec<Operation> },
    /// A node type onex loads but does not execute yet (REDUCER, ORCHESTRATOR)
    /// or one implemented by Python classes only. Envelopes sent to it get a
    /// `WORKER_REQUIRED` error response.
    NeedsWorker { node_type: String, reason: String },
    /// A node listed in the runtime contract without a node contract file:
    /// its behaviour is Rust code registered under its slug through the
    /// library API. The runtime refuses to start if nothing is registered.
    Native,
}

/// One operation → handler route of an EFFECT node.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub operation: Operation,
    pub target: RouteTarget,
}

/// Where a route sends the envelope.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteTarget {
    /// A handler binding of the runtime contract, by binding name.
    Handler(String),
    /// A Python class (`handler: {name, module}`) with no native handler type.
    Worker { class: String, module: String },
}
