//! Wiring: the ONLY place where buses, handlers and nodes are connected.
//!
//! Everything that turns a contract (and what was registered in code) into
//! running parts happens here, in this order: topics, bus, handlers, nodes,
//! routes. Later layers (resilience stack, secrets, metrics) are added here
//! too, so there is one file to read to know how an envelope reaches a handler.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use onex_bus::{ConsumerGroup, EventBus, MemoryBus, MemoryBusConfig};
use onex_core::contract::Diagnostics;
use onex_core::contract::{
    BusKind, DeadLetterPolicy, Environment, HandlerBinding, HandlerType, NodeKind, RouteTarget, RuntimeContract,
};
use onex_core::{Clock, IdGen, NodeId, TopicName};
use onex_handlers::{ConsulHandler, DbHandler, Handler, HttpHandler, LocalHandler, ResilientHandler, VaultHandler};
use serde_json::{Map, Value};
use tracing::warn;

use crate::activity::{Activity, NodeCounters};
use crate::builder::{CodeNode, NodeOptions, RuntimeHostBuilder};
use crate::dispatch::Router;
use crate::handler_config::HandlerConfigResolver;
use crate::host::{Counters, HandlerEntry, HostError, NodeEntry, RuntimeHost, Shared};
use crate::metrics::HostMetrics;
use crate::node::{ComputeNode, EffectNode, NeedsWorkerNode, Node};
use crate::secrets::SecretResolver;

/// A handler as the wiring holds it.
enum Bound {
    /// A contract binding behind its resilience stack, with its dead-letter policy.
    Resilient(Arc<ResilientHandler>, DeadLetterPolicy),
    /// Registered in code with no binding.
    Plain(Arc<dyn Handler>),
}

impl Bound {
    fn entry(self, name: String) -> HandlerEntry {
        match self {
            Self::Resilient(h, _) => HandlerEntry { name, handler: h.clone(), stack: Some(h) },
            Self::Plain(handler) => HandlerEntry { name, handler, stack: None },
        }
    }

    fn resilient(&self) -> Option<&Arc<ResilientHandler>> {
        match self {
            Self::Resilient(h, _) => Some(h),
            Self::Plain(_) => None,
        }
    }
}

struct Topics {
    inputs: Vec<TopicName>,
    output: TopicName,
    dlq: TopicName,
}

pub(crate) async fn wire(
    mut b: RuntimeHostBuilder,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    grace: Duration,
) -> Result<RuntimeHost, HostError> {
    let contract = b.contract.take();
    let mut topics = topics(contract.as_ref(), &b)?;
    let runtime_id = contract.as_ref().map_or_else(|| "onex".to_owned(), |c| c.runtime.name.clone());
    let mut group = b
        .group
        .take()
        .or_else(|| contract.as_ref().map(|c| c.event_bus.consumer_group.clone()))
        .unwrap_or_else(|| runtime_id.clone());

    // The bus: one given in code, or the contract's (memory by default, or Kafka,
    // whose KAFKA_* environment overrides may also change the group and DLQ topic).
    let bus: Arc<dyn EventBus> = match (b.bus.take(), contract.as_ref()) {
        (Some(bus), _) => bus,
        (None, Some(c)) if c.event_bus.kind == BusKind::Kafka => {
            kafka_bus(c, &mut group, &mut topics.dlq, &|name| std::env::var(name).ok()).await?
        }
        (None, c) => Arc::new(MemoryBus::new(c.map(|c| MemoryBusConfig::from(c.event_bus.memory)).unwrap_or_default())),
    };

    // Handlers: every enabled contract binding behind its resilience stack
    // (deadline → retry → circuit breaker → rate limit → timeout, the order is
    // written once in onex_handlers::resilience::stack), then handlers
    // registered only in code, which have no binding and are called directly.
    let mut handlers: BTreeMap<String, Bound> = BTreeMap::new();
    let mut disabled = Vec::new();
    if let Some(c) = &contract {
        let mut secrets = b.secrets.take();
        let mut problems = Vec::new();
        for (index, binding) in c.handlers.iter().enumerate() {
            if !binding.enabled {
                disabled.push(binding.name.clone());
                continue;
            }
            let handler = match b.handlers.remove(&binding.name) {
                Some(h) => h,
                None => {
                    // Secrets are resolved here, once, before any handler exists: a handler
                    // only ever sees its final config map.
                    let resolver = match &secrets {
                        Some(r) => r,
                        None => secrets.insert(SecretResolver::from_env()?),
                    };
                    match HandlerConfigResolver::new(resolver).resolve(&c.source, index, binding).await {
                        Ok(config) => build_handler(binding, config.as_map(), c.runtime.environment)?,
                        Err(diagnostics) => {
                            problems.extend(diagnostics);
                            continue;
                        }
                    }
                }
            };
            let stack = Arc::new(ResilientHandler::new(handler, binding, Arc::clone(&clock)));
            handlers.insert(binding.name.clone(), Bound::Resilient(stack, binding.dead_letter_on));
        }
        if !problems.is_empty() {
            return Err(HostError::Contract(Diagnostics(problems)));
        }
    }
    for (name, handler) in std::mem::take(&mut b.handlers) {
        handlers.insert(name, Bound::Plain(handler));
    }

    // Nodes: from the contract, then registered in code.
    let mut nodes = Vec::new();
    if let Some(c) = &contract {
        for spec in &c.nodes {
            let node = match &spec.kind {
                // A contract entry without a contract file names a node written in Rust.
                NodeKind::Native => take_code_node(&mut b.nodes, &spec.slug)?,
                kind => build_node(&spec.slug, kind, &handlers, &disabled, &clock)?,
            };
            nodes.push((
                NodeEntry {
                    id: spec.slug.clone(),
                    node,
                    publish_topic: spec.publish_topic.clone(),
                    concurrency: spec.concurrency,
                    counters: NodeCounters::default(),
                },
                spec.subscribe_topics.clone(),
            ));
        }
    }
    for CodeNode { id, node, options: NodeOptions { subscribe, publish, concurrency } } in std::mem::take(&mut b.nodes)
    {
        let subscribe = if subscribe.is_empty() { topics.inputs.clone() } else { subscribe };
        let publish_topic = publish.unwrap_or_else(|| topics.output.clone());
        nodes.push((NodeEntry { id, node, publish_topic, concurrency, counters: NodeCounters::default() }, subscribe));
    }
    if nodes.is_empty() {
        return Err(HostError::Wiring(
            "the runtime hosts no nodes; add one under `runtime.nodes` in the contract, or register one with `RuntimeHostBuilder::node`".into(),
        ));
    }

    let mut router = Router::default();
    let mut seen = std::collections::HashSet::new();
    for (index, (entry, subscribe)) in nodes.iter().enumerate() {
        if !seen.insert(entry.id.clone()) {
            return Err(HostError::Wiring(format!("two nodes are named `{}`; node slugs must be unique", entry.id)));
        }
        let operations = entry.node.operations();
        for topic in subscribe {
            router.add(topic, &entry.id, index, &operations).map_err(HostError::Wiring)?;
        }
    }

    let metrics =
        HostMetrics::new(nodes.iter().map(|(entry, _)| &entry.id), handlers.values().filter_map(Bound::resilient));
    let shared = Shared {
        runtime_id,
        bus,
        clock,
        ids,
        nodes: nodes.into_iter().map(|(entry, _)| entry).collect(),
        router,
        output_topic: topics.output,
        dlq_topic: topics.dlq,
        group: ConsumerGroup(group),
        handlers: handlers.into_iter().map(|(name, bound)| bound.entry(name)).collect(),
        grace,
        counters: Counters::default(),
        activity: Activity::new(),
        metrics,
    };
    Ok(RuntimeHost { shared: Arc::new(shared) })
}

fn topics(contract: Option<&RuntimeContract>, b: &RuntimeHostBuilder) -> Result<Topics, HostError> {
    if let Some(c) = contract {
        return Ok(Topics {
            inputs: c.event_bus.input_topics.clone(),
            output: c.event_bus.output_topic.clone(),
            dlq: c.event_bus.dlq_topic.clone(),
        });
    }
    let Some((input, output)) = b.topics.clone() else {
        return Err(HostError::Wiring(
            "no topics: give the host a contract, or call `RuntimeHostBuilder::topics(input, output)`".into(),
        ));
    };
    let dlq = match &b.dlq_topic {
        Some(t) => t.clone(),
        None => default_dlq(&input)?,
    };
    Ok(Topics { inputs: vec![input], output, dlq })
}

/// `onex.<tenant>.<domain>.cmd.vN` → `onex.<tenant>.<domain>.dlq.vN`.
fn default_dlq(input: &TopicName) -> Result<TopicName, HostError> {
    let mut parts: Vec<&str> = input.as_str().split('.').collect();
    if let Some(direction) = parts.get_mut(3) {
        *direction = "dlq";
    }
    TopicName::parse(&parts.join("."), onex_core::TopicConvention::TenantDomain).map_err(|e| {
        HostError::Wiring(format!(
            "cannot derive a DLQ topic from `{input}` ({e}); call `RuntimeHostBuilder::dlq_topic`"
        ))
    })
}

/// The Kafka settings of a `kind: kafka` contract, after the `KAFKA_*` environment
/// overrides, with the consumer group and DLQ topic they resolve to. The host's
/// wiring and the CLI's `onex dlq` both use it, so they always agree.
#[cfg(feature = "kafka")]
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub config: onex_bus::kafka::KafkaConfig,
    pub group: String,
    pub dlq: TopicName,
}

/// Reads the Kafka settings of `contract` (see [`KafkaSettings`]).
///
/// # Errors
/// [`HostError::Wiring`] listing every problem in the settings or the overrides.
#[cfg(feature = "kafka")]
pub fn kafka_settings(
    c: &RuntimeContract,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<KafkaSettings, HostError> {
    use onex_bus::kafka::KafkaConfig;
    if c.event_bus.kind != BusKind::Kafka {
        return Err(HostError::Wiring(format!(
            "{} uses the in-memory bus (`event_bus.kind: memory`); this needs `kind: kafka`",
            c.source.display()
        )));
    }
    let config = KafkaConfig::from_contract(&c.event_bus.backend_config, &c.runtime.name, env).map_err(|problems| {
        HostError::Wiring(format!("the kafka event bus settings have problems:\n  {}", problems.join("\n  ")))
    })?;
    let group = config.group_override.clone().unwrap_or_else(|| c.event_bus.consumer_group.clone());
    let dlq = match &config.dead_letter_topic_override {
        Some(t) => TopicName::parse(t, c.runtime.topic_convention).map_err(|e| {
            HostError::Wiring(format!(
                "KAFKA_DEAD_LETTER_TOPIC `{t}` is not a valid topic name ({e}); use one like `onex.acme.orders.dlq.v1`"
            ))
        })?,
        None => c.event_bus.dlq_topic.clone(),
    };
    Ok(KafkaSettings { config, group, dlq })
}

#[cfg(feature = "kafka")]
async fn kafka_bus(
    c: &RuntimeContract,
    group: &mut String,
    dlq: &mut TopicName,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Arc<dyn EventBus>, HostError> {
    let settings = kafka_settings(c, env)?;
    // KAFKA_GROUP and KAFKA_DEAD_LETTER_TOPIC override the contract; a group set in code
    // (`RuntimeHostBuilder::consumer_group`) was already applied and is kept only without them.
    if settings.config.group_override.is_some() {
        *group = settings.group;
    }
    *dlq = settings.dlq;
    Ok(Arc::new(onex_bus::kafka::KafkaBus::connect(settings.config).await?))
}

#[cfg(not(feature = "kafka"))]
async fn kafka_bus(
    _: &RuntimeContract,
    _: &mut String,
    _: &mut TopicName,
    _: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Arc<dyn EventBus>, HostError> {
    Err(HostError::Wiring(
        "event_bus.kind `kafka`: this onex was built without the `kafka` cargo feature; rebuild with `--features kafka`".into(),
    ))
}

/// Builds the handler of `binding` from its resolved config (contract values,
/// `config_ref`, environment overrides, secrets). Connections open lazily.
fn build_handler(
    binding: &HandlerBinding,
    config: &Map<String, Value>,
    environment: Environment,
) -> Result<Arc<dyn Handler>, HostError> {
    Ok(match binding.handler_type {
        HandlerType::Local => Arc::new(LocalHandler::new(environment)?),
        HandlerType::Http => Arc::new(HttpHandler::from_config(config)?),
        HandlerType::Db => Arc::new(DbHandler::from_config(config)?),
        HandlerType::Vault => Arc::new(VaultHandler::from_config(config)?),
        HandlerType::Consul => Arc::new(ConsulHandler::from_config(config)?),
    })
}

fn build_node(
    slug: &NodeId,
    kind: &NodeKind,
    handlers: &BTreeMap<String, Bound>,
    disabled: &[String],
    clock: &Arc<dyn Clock>,
) -> Result<Arc<dyn Node>, HostError> {
    Ok(match kind {
        NodeKind::Effect { routes } => {
            let mut node = EffectNode::builder().clock(Arc::clone(clock));
            for route in routes {
                node = match &route.target {
                    RouteTarget::Handler(name) => {
                        let Some(handler) = handlers.get(name) else {
                            let why =
                                if disabled.contains(name) { "is disabled (`enabled: false`)" } else { "is not bound" };
                            let bound: Vec<&str> = handlers.keys().map(String::as_str).collect();
                            return Err(HostError::Wiring(format!(
                                "node `{slug}` routes `{}` to handler `{name}`, which {why}; bound handlers: {}",
                                route.operation,
                                bound.join(", ")
                            )));
                        };
                        match handler {
                            Bound::Resilient(h, policy) => {
                                node.route_resilient(route.operation.clone(), Arc::clone(h), *policy)
                            }
                            Bound::Plain(h) => node.route(route.operation.clone(), Arc::clone(h)),
                        }
                    }
                    RouteTarget::Worker { class, module } => {
                        node.worker_route(route.operation.clone(), class.clone(), module.clone())
                    }
                };
            }
            Arc::new(node.build())
        }
        NodeKind::Compute { jq, operations } => Arc::new(
            ComputeNode::new(jq, operations.clone()).map_err(|e| HostError::Wiring(format!("node `{slug}`: {e}")))?,
        ),
        NodeKind::Native => {
            return Err(HostError::Wiring(format!("node `{slug}` is native but was not resolved from code nodes")));
        }
        NodeKind::NeedsWorker { node_type, reason } => {
            warn!(node_id = %slug, node_type = %node_type, reason = %reason, "Node needs a worker; its envelopes get WORKER_REQUIRED errors.");
            Arc::new(NeedsWorkerNode { node_type: node_type.clone(), reason: reason.clone() })
        }
    })
}

fn take_code_node(code: &mut Vec<CodeNode>, slug: &NodeId) -> Result<Arc<dyn Node>, HostError> {
    match code.iter().position(|n| &n.id == slug) {
        Some(i) => Ok(code.remove(i).node),
        None => Err(HostError::Wiring(format!(
            "node `{slug}` has no `contract:` file and no Rust node is registered under that name; \
             add `contract: <path>` to the node in the runtime contract, or register it with `RuntimeHostBuilder::node(\"{slug}\", …)`"
        ))),
    }
}
