//! `RuntimeHostBuilder`: everything a host needs, given from a contract, from code, or both.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use onex_bus::EventBus;
use onex_core::contract::RuntimeContract;
use onex_core::{Clock, IdGen, NodeId, TopicName, UuidV7Ids};
use onex_handlers::{Handler, TokioClock};

use crate::host::{DEFAULT_SHUTDOWN_GRACE, HostError, RuntimeHost};
use crate::node::Node;
use crate::secrets::SecretResolver;
use crate::wiring;

/// Where a node registered in code consumes and publishes.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Topics the node consumes; empty means the host's input topics.
    pub subscribe: Vec<TopicName>,
    /// Where its responses go; `None` means the host's output topic.
    pub publish: Option<TopicName>,
    /// Envelopes processed at once (different partition keys). Default 64.
    pub concurrency: NonZeroUsize,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self { subscribe: Vec::new(), publish: None, concurrency: default_concurrency() }
    }
}

pub(crate) const fn default_concurrency() -> NonZeroUsize {
    match NonZeroUsize::new(64) {
        Some(n) => n,
        None => NonZeroUsize::MIN,
    }
}

/// A node written in Rust and registered in code.
#[derive(Debug)]
pub(crate) struct CodeNode {
    pub(crate) id: NodeId,
    pub(crate) node: Arc<dyn Node>,
    pub(crate) options: NodeOptions,
}

/// Builds a [`RuntimeHost`].
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use onex_runtime::{RuntimeHost, NodeOptions, EffectNode};
/// use onex_handlers::LocalHandler;
/// use onex_core::contract::Environment;
///
/// let local = Arc::new(LocalHandler::new(Environment::Dev)?);
/// let node = EffectNode::builder().route("local.echo", local.clone()).build();
/// let host = RuntimeHost::builder()
///     .topics("onex.acme.demo.cmd.v1".parse()?, "onex.acme.demo.evt.v1".parse()?)
///     .handler("local", local)
///     .node("echo", Arc::new(node), NodeOptions::default())
///     .build()
///     .await?;
/// let running = host.start().await?;
/// // ... publish envelopes on running.bus() ...
/// running.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct RuntimeHostBuilder {
    pub(crate) contract: Option<RuntimeContract>,
    pub(crate) bus: Option<Arc<dyn EventBus>>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) ids: Option<Arc<dyn IdGen>>,
    pub(crate) handlers: BTreeMap<String, Arc<dyn Handler>>,
    pub(crate) nodes: Vec<CodeNode>,
    pub(crate) topics: Option<(TopicName, TopicName)>,
    pub(crate) dlq_topic: Option<TopicName>,
    pub(crate) group: Option<String>,
    pub(crate) grace: Option<Duration>,
    pub(crate) secrets: Option<SecretResolver>,
}

impl RuntimeHostBuilder {
    /// Hosts the nodes and handlers of a loaded runtime contract.
    #[must_use]
    pub fn contract(mut self, contract: RuntimeContract) -> Self {
        self.contract = Some(contract);
        self
    }

    /// Uses `bus` instead of the one the contract names (default: an in-memory bus).
    #[must_use]
    pub fn bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Uses `clock` for timestamps and the resilience layers (default: tokio's clock, wall-time anchored).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Uses `ids` for envelope ids (default: UUID v7).
    #[must_use]
    pub fn ids(mut self, ids: Arc<dyn IdGen>) -> Self {
        self.ids = Some(ids);
        self
    }

    /// Registers a handler under a binding name. A contract binding with the
    /// same name uses this instance instead of building one from its type.
    #[must_use]
    pub fn handler(mut self, name: impl Into<String>, handler: Arc<dyn Handler>) -> Self {
        self.handlers.insert(name.into(), handler);
        self
    }

    /// Hosts a node written in Rust.
    #[must_use]
    pub fn node(mut self, id: impl Into<NodeId>, node: Arc<dyn Node>, options: NodeOptions) -> Self {
        self.nodes.push(CodeNode { id: id.into(), node, options });
        self
    }

    /// Input and output topics when there is no contract (a contract's win otherwise).
    #[must_use]
    pub fn topics(mut self, input: TopicName, output: TopicName) -> Self {
        self.topics = Some((input, output));
        self
    }

    /// The dead-letter topic when there is no contract.
    #[must_use]
    pub fn dlq_topic(mut self, topic: TopicName) -> Self {
        self.dlq_topic = Some(topic);
        self
    }

    /// The consumer group (default: the contract's, else `onex`).
    #[must_use]
    pub fn consumer_group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// How long shutdown waits for in-flight envelopes (default: the contract's
    /// `shutdown_grace_seconds`, else 30 s).
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// Resolves `secret_ref` values in handler configs with `secrets`
    /// (default: [`SecretResolver::from_env`]: Vault when `VAULT_ADDR` is set, then env, then files).
    #[must_use]
    pub fn secrets(mut self, secrets: SecretResolver) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Wires everything together.
    ///
    /// # Errors
    /// [`HostError::Wiring`] for an inconsistent set-up (no topics, ambiguous
    /// routes, a jq expression that does not compile, …), with the fix.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is started until it returns.
    pub async fn build(self) -> Result<RuntimeHost, HostError> {
        // Tokio's clock: the resilience layers sleep on tokio time, so reading time
        // from the same source keeps them consistent (and fake under paused tokio time).
        let clock = self.clock.clone().unwrap_or_else(|| Arc::new(TokioClock::new()));
        let ids = self.ids.clone().unwrap_or_else(|| Arc::new(UuidV7Ids));
        let grace = self
            .grace
            .or_else(|| self.contract.as_ref().map(|c| c.runtime.shutdown_grace))
            .unwrap_or(DEFAULT_SHUTDOWN_GRACE);
        wiring::wire(self, clock, ids, grace).await
    }
}
