//! Nodes onex loads but cannot execute itself.

use async_trait::async_trait;
use onex_core::{Envelope, ErrorCode, Operation, RuntimeError};
use serde_json::Value;

use super::Node;

/// A REDUCER / ORCHESTRATOR node, or one implemented only by Python classes.
/// Every envelope sent to it is answered with `WORKER_REQUIRED`, so nothing
/// waits forever on a node that will never answer.
#[derive(Debug)]
pub struct NeedsWorkerNode {
    pub node_type: String,
    pub reason: String,
}

#[async_trait]
impl Node for NeedsWorkerNode {
    fn operations(&self) -> Vec<Operation> {
        Vec::new()
    }

    async fn process(&self, _envelope: &Envelope) -> Result<Value, RuntimeError> {
        Err(RuntimeError::new(ErrorCode::WorkerRequired, format!("{} node: {}", self.node_type, self.reason)))
    }
}
