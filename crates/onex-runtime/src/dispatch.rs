//! Routing: which hosted node gets an envelope.
//!
//! Rules, in order: an envelope naming a `target_node` goes to that node
//! (if it consumes the topic); on a topic consumed by one node, every
//! envelope goes to it; on a shared topic, the `operation` decides. The
//! table is built once at start-up; a lookup is two hash probes.

use std::collections::HashMap;

use onex_core::{Envelope, ErrorCode, NodeId, Operation, RuntimeError, TopicName};

/// Index of a node in the host's node list.
pub(crate) type NodeIndex = usize;

#[derive(Debug, Default)]
struct TopicRoutes {
    nodes: Vec<(NodeId, NodeIndex)>,
    by_operation: HashMap<Operation, NodeIndex>,
}

/// The routing table of one host.
#[derive(Debug, Default)]
pub(crate) struct Router {
    topics: HashMap<TopicName, TopicRoutes>,
}

impl Router {
    /// Adds node `index` as a consumer of `topic` answering `operations`.
    ///
    /// # Errors
    /// A message when another node on `topic` already answers one of `operations`.
    pub(crate) fn add(
        &mut self,
        topic: &TopicName,
        id: &NodeId,
        index: NodeIndex,
        operations: &[Operation],
    ) -> Result<(), String> {
        let routes = self.topics.entry(topic.clone()).or_default();
        routes.nodes.push((id.clone(), index));
        for op in operations {
            if let Some(other) = routes.by_operation.insert(op.clone(), index) {
                let other =
                    routes.nodes.iter().find(|(_, i)| *i == other).map(|(n, _)| n.to_string()).unwrap_or_default();
                return Err(format!(
                    "nodes `{other}` and `{id}` both consume `{topic}` and answer operation `{op}`; \
                     give one of them its own subscribe topic, or remove the operation from one"
                ));
            }
        }
        Ok(())
    }

    /// Every topic some node consumes, sorted.
    pub(crate) fn topics(&self) -> Vec<TopicName> {
        let mut t: Vec<TopicName> = self.topics.keys().cloned().collect();
        t.sort();
        t
    }

    /// Picks the node for `envelope` received on `topic`.
    ///
    /// # Errors
    /// `NODE_NOT_FOUND` / `HANDLER_NOT_FOUND` with what is available.
    pub(crate) fn route(&self, topic: &TopicName, envelope: &Envelope) -> Result<NodeIndex, RuntimeError> {
        let Some(routes) = self.topics.get(topic) else {
            return Err(RuntimeError::new(ErrorCode::NodeNotFound, format!("no node consumes topic `{topic}`")));
        };
        let names = || routes.nodes.iter().map(|(n, _)| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        if let Some(target) = &envelope.target_node {
            return routes.nodes.iter().find(|(n, _)| n == target).map(|(_, i)| *i).ok_or_else(|| {
                RuntimeError::new(
                    ErrorCode::NodeNotFound,
                    format!("target_node `{target}` does not consume `{topic}`; nodes on this topic: {}", names()),
                )
            });
        }
        if let [(_, only)] = routes.nodes.as_slice() {
            return Ok(*only);
        }
        let Some(op) = &envelope.operation else {
            return Err(RuntimeError::new(
                ErrorCode::EnvelopeValidation,
                format!("`{topic}` is shared by nodes {}; set `target_node` or `operation` on the envelope", names()),
            ));
        };
        routes.by_operation.get(op).copied().ok_or_else(|| {
            let mut ops: Vec<&str> = routes.by_operation.keys().map(Operation::as_str).collect();
            ops.sort_unstable();
            RuntimeError::new(
                ErrorCode::HandlerNotFound,
                format!("no node on `{topic}` answers operation `{op}`; available operations: {}", ops.join(", ")),
            )
            .with_operation(op.as_str())
        })
    }
}

#[cfg(test)]
mod tests {
    use onex_core::{ManualClock, SequentialIds};
    use serde_json::Value;

    use super::*;

    fn topic(s: &str) -> TopicName {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn env(op: &str, target: Option<&str>) -> Envelope {
        let mut e = Envelope::command(&SequentialIds::new(), &ManualClock::at_fixed_start(), op, Value::Null);
        e.target_node = target.map(NodeId::from);
        e
    }

    fn router() -> Router {
        let mut r = Router::default();
        let t = topic("onex.acme.app.cmd.v1");
        r.add(&t, &NodeId::from("a"), 0, &[Operation::from("x.one")]).unwrap_or_else(|e| panic!("{e}"));
        r.add(&t, &NodeId::from("b"), 1, &[Operation::from("x.two")]).unwrap_or_else(|e| panic!("{e}"));
        r.add(&topic("onex.acme.solo.cmd.v1"), &NodeId::from("c"), 2, &[]).unwrap_or_else(|e| panic!("{e}"));
        r
    }

    #[test]
    fn target_node_wins_over_operation() {
        assert_eq!(router().route(&topic("onex.acme.app.cmd.v1"), &env("x.one", Some("b"))), Ok(1));
    }

    #[test]
    fn the_sole_node_on_a_topic_gets_everything() {
        assert_eq!(router().route(&topic("onex.acme.solo.cmd.v1"), &env("anything", None)), Ok(2));
    }

    #[test]
    fn shared_topics_route_by_operation() {
        let r = router();
        assert_eq!(r.route(&topic("onex.acme.app.cmd.v1"), &env("x.one", None)), Ok(0));
        assert_eq!(r.route(&topic("onex.acme.app.cmd.v1"), &env("x.two", None)), Ok(1));
    }

    #[test]
    fn unknown_operations_list_what_is_available() {
        let err = router().route(&topic("onex.acme.app.cmd.v1"), &env("x.three", None)).err();
        let err = err.unwrap_or_else(|| panic!("routed"));
        assert_eq!(err.code, ErrorCode::HandlerNotFound);
        assert!(err.message.contains("x.one, x.two"), "{}", err.message);
    }

    #[test]
    fn unknown_target_nodes_list_the_nodes_on_the_topic() {
        let err = router().route(&topic("onex.acme.app.cmd.v1"), &env("x.one", Some("zz"))).err();
        let err = err.unwrap_or_else(|| panic!("routed"));
        assert_eq!(err.code, ErrorCode::NodeNotFound);
        assert!(err.message.contains("`a`, `b`"), "{}", err.message);
    }

    #[test]
    fn two_nodes_claiming_one_operation_on_one_topic_is_refused() {
        let mut r = router();
        let err = r.add(&topic("onex.acme.app.cmd.v1"), &NodeId::from("d"), 3, &[Operation::from("x.one")]);
        assert!(err.err().unwrap_or_default().contains("both consume"));
    }
}
