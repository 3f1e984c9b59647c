//! The validated contract model: what the runtime executes.
//!
//! These types are the *output* of loading. They hold only checked values:
//! topics are [`TopicName`]s, durations are [`Duration`]s, paths are
//! resolved. Everything the YAML may spell in several ways (v0.1 vs v0.2,
//! `type` vs `handler_type`, upper- vs lower-case node types) is normalised
//! before it gets here.

use std::num::NonZeroUsize;
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

/// `runtime.name`, `runtime.version`, `runtime.environment`, `runtime.topic_convention`.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    pub name: String,
    pub version: Option<String>,
    pub environment: Environment,
    pub topic_convention: TopicConvention,
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
    Fixed,
    #[default]
    Exponential,
}

/// `retry_policy` of a handler binding (seed 000 defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt. Default 3.
    pub max_retries: u32,
    pub backoff: Backoff,
    /// Default 100 ms.
    pub base_delay: Duration,
    /// Default 5000 ms; never less than `base_delay`.
    pub max_delay: Duration,
    /// Whether delays are randomised (full jitter). Default true.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            backoff: Backoff::Exponential,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(5000),
            jitter: true,
        }
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
    pub rate_limit_per_second: Option<f64>,
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
