//! Nodes: what the runtime hosts.
//!
//! A node turns one command envelope into one result payload (or a
//! classified error). The runtime owns everything around that — parsing,
//! routing, response envelopes, publishing, acks — so a node is small: the
//! built-in EFFECT and COMPUTE nodes are a routing table and a jq filter,
//! and a Rust node registered through [`crate::RuntimeHostBuilder::node`]
//! is one `process` function.

mod compute;
mod effect;
mod worker;

use std::fmt;

use async_trait::async_trait;
use onex_core::{Envelope, Operation, RuntimeError};
use serde_json::Value;

pub use compute::ComputeNode;
pub use effect::{EffectNode, EffectNodeBuilder};
pub use worker::NeedsWorkerNode;

/// A unit of work the runtime hosts.
///
/// Implementors keep this contract:
/// - `process` may run concurrently for different partition keys; envelopes
///   with the same key are processed one at a time, in order.
/// - A domain refusal is an `Err` with a permanent, conflict or rejected
///   class; only a transient error means "the same envelope may succeed later".
/// - `shutdown` is called once, after the last `process` returned.
#[async_trait]
pub trait Node: Send + Sync + fmt::Debug {
    /// Operations this node answers, used to route envelopes that do not name
    /// a `target_node` on a topic shared by several nodes. Empty means "any
    /// operation" (only valid for the sole node on its topics).
    fn operations(&self) -> Vec<Operation>;

    /// Processes one envelope and returns the response payload.
    ///
    /// # Errors
    /// A classified [`RuntimeError`]; the runtime turns it into an error envelope.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the work; the envelope is not acked and
    /// will be delivered again.
    async fn process(&self, envelope: &Envelope) -> Result<Value, RuntimeError>;

    /// Processes one envelope and reports how: the runtime calls this.
    ///
    /// The default runs [`Node::process`] once. Nodes that retry (EFFECT
    /// nodes, through the resilience stack) override it to report the
    /// attempts made and whether a failure must also be dead-lettered.
    async fn run(&self, envelope: &Envelope) -> NodeOutcome {
        NodeOutcome { result: self.process(envelope).await, attempts: 1, dead_letter: false }
    }

    /// Releases resources. Called exactly once.
    async fn shutdown(&self) {}
}

/// What processing one envelope came to.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeOutcome {
    /// The response payload, or the error for the error response.
    pub result: Result<Value, RuntimeError>,
    /// Attempts made: 1 + retries (0 when the work never started).
    pub attempts: u32,
    /// Whether the failure also goes to the DLQ (the binding's `dead_letter_on`).
    pub dead_letter: bool,
}
