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

    /// Releases resources. Called exactly once.
    async fn shutdown(&self) {}
}
