//! Node contracts in the shapes real ONEX contracts use (`onex-contract-shapes.md`).
//!
//! Keys onex executes are validated strictly. Other keys of the ONEX
//! ecosystem ([`KNOWN_ONEX_KEYS`]) are accepted with one info note each, so
//! existing contracts load; keys listed nowhere are errors with a "did you
//! mean", so typos are still caught. Parts implemented only by Python classes
//! (a `handler: {name, module}` route, payload-type routing, reducers,
//! orchestrators) make the node or route *need a worker*: an info note, not
//! a load error. jq expressions are not compiled here (no jaq in the core);
//! the runtime compiles them and reports errors.

use std::path::Path;

use super::decode::{Decoder, Fields, Located, index, join};
use super::model::{HandlerBinding, HandlerType, NodeKind, Route, RouteTarget};
use super::yaml::{Kind, Node, Pos};
use super::{fsm, workflow};
use crate::envelope::Operation;
use crate::topic::{TopicConvention, TopicName};

/// Top-level keys onex executes.
const EXECUTED_KEYS: [&str; 10] = [
    "node_type",
    "contract_version",
    "description",
    "handler_routing",
    "event_bus",
    "state_machine",
    "state_transitions",
    "workflow_coordination",
    "io_operations",
    "onex",
];

/// Top-level keys of ONEX contracts that onex accepts but does not use (shapes doc §2).
pub const KNOWN_ONEX_KEYS: [&str; 47] = [
    "name",
    "metadata",
    "node_version",
    "input_model",
    "output_model",
    "capabilities",
    "dependencies",
    "descriptor",
    "error_handling",
    "health_check",
    "runtime_profiles",
    "node_id",
    "fingerprint",
    "published_events",
    "consumed_events",
    "handlers",
    "contract_name",
    "node_name",
    // the rarer ones
    "config",
    "handler",
    "handler_id",
    "node_capabilities",
    "definitions",
    "intent_emission",
    "intent_consumption",
    "state_model",
    "idempotency",
    "subscriptions",
    "publications",
    "effect",
    "effect_operations",
    "wiring_config",
    "operation_bindings",
    "activation",
    "timing_constraints",
    "performance_benchmarks",
    "golden_path",
    "feature_flags",
    "io_config",
    "version",
    "author",
    "tags",
    "license",
    "workflow_id",
    "initial_command",
    "terminal_event",
    "event_flow",
];

const NODE_TYPES: [&str; 8] = [
    "EFFECT_GENERIC",
    "COMPUTE_GENERIC",
    "REDUCER_GENERIC",
    "ORCHESTRATOR_GENERIC",
    "effect",
    "compute",
    "reducer",
    "orchestrator",
];
const ROUTING_KEYS: [&str; 9] = [
    "version",
    "routing_strategy",
    "default_handler",
    "execution_mode",
    "partial_failure_handling",
    "aggregation_strategy",
    "max_timeout_seconds",
    "handler_dependencies",
    "handlers",
];
const ROUTE_KEYS: [&str; 16] = [
    "operation",
    "supported_operations",
    "handler_type",
    "handler",
    "handler_binding",
    "event_model",
    "event_type",
    "topic",
    "message_category",
    "output_events",
    "output_fields",
    "backend",
    "description",
    "state_decision_matrix",
    "priority",
    "name",
];
const PY_HANDLER_KEYS: [&str; 4] = ["name", "module", "handler_type", "description"];
const BUS_KEYS: [&str; 10] = [
    "version",
    "subscribe_topics",
    "publish_topics",
    "dlq_topics",
    "plugin_managed",
    "consumer_group",
    "consumer_purpose",
    "auto_offset_reset",
    "subscribe",
    "publish",
];
const TOPIC_ITEM_KEYS: [&str; 5] = ["topic", "direction", "description", "event_type", "message_category"];
const IO_OP_KEYS: [&str; 8] =
    ["operation", "name", "description", "input_fields", "output_fields", "idempotent", "input_model", "output_model"];

/// What a node contract is checked against.
#[derive(Debug, Clone, Copy)]
pub struct NodeContext<'a> {
    /// The runtime's topic convention; `None` accepts either (standalone validation).
    pub convention: Option<TopicConvention>,
    /// The runtime's handler bindings; `None` skips binding checks (standalone validation).
    pub bindings: Option<&'a [HandlerBinding]>,
    /// The runtime contract, named in fixes.
    pub runtime_file: Option<&'a Path>,
}

/// The parts of a [`super::NodeSpec`] a node contract defines.
#[derive(Debug, Clone)]
pub struct DecodedNode {
    pub kind: NodeKind,
    /// Empty: the runtime's input topics.
    pub subscribe: Vec<TopicName>,
    /// `None`: the runtime's output topic.
    pub publish: Option<TopicName>,
    pub description: Option<String>,
}

impl DecodedNode {
    /// A node without a contract file.
    pub fn native() -> Self {
        Self { kind: NodeKind::Native, subscribe: Vec::new(), publish: None, description: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeType {
    Effect,
    Compute,
    Reducer,
    Orchestrator,
}

impl NodeType {
    const fn canonical(self) -> &'static str {
        match self {
            Self::Effect => "EFFECT_GENERIC",
            Self::Compute => "COMPUTE_GENERIC",
            Self::Reducer => "REDUCER_GENERIC",
            Self::Orchestrator => "ORCHESTRATOR_GENERIC",
        }
    }
}

/// Whether `root` looks like a node contract rather than a runtime contract.
pub fn looks_like_node(root: &Node) -> bool {
    root.get("node_type").is_some() || matches!(root.get("contract_version").map(|n| &n.kind), Some(Kind::Map(_)))
}

/// Decodes one node contract.
pub fn decode(root: &Node, ctx: &NodeContext<'_>, d: &mut Decoder<'_>) -> Option<DecodedNode> {
    let top = d.map(root, "")?;
    for (key, _) in top.entries {
        let k = key.name.as_str();
        if EXECUTED_KEYS.contains(&k) {
            continue;
        }
        if KNOWN_ONEX_KEYS.contains(&k) {
            d.info(
                key.pos,
                k,
                format!("`{k}` is a known ONEX key that onex does not use"),
                Some("it is accepted so existing ONEX contracts load unchanged".into()),
                None,
            );
        } else {
            let all: Vec<&str> = EXECUTED_KEYS.iter().chain(KNOWN_ONEX_KEYS.iter()).copied().collect();
            d.unknown_key(key, "", &all);
        }
    }
    if let Some(v) = d.required(&top, "contract_version", "") {
        version_value(v, "contract_version", d);
    }
    let node_type = d.required(&top, "node_type", "").and_then(|n| d.one_of(n, "node_type", &NODE_TYPES)).map(|t| {
        match t.to_ascii_lowercase().as_str() {
            "effect_generic" | "effect" => NodeType::Effect,
            "compute_generic" | "compute" => NodeType::Compute,
            "reducer_generic" | "reducer" => NodeType::Reducer,
            _ => NodeType::Orchestrator,
        }
    });
    let description = top.get("description").and_then(|n| d.string(n, "description")).map(|s| s.trim().to_owned());
    let (subscribe, publish) = top.get("event_bus").map(|n| event_bus(n, ctx, d)).unwrap_or_default();
    let io_ops = top.get("io_operations").map(|n| io_operations(n, d)).unwrap_or_default();
    let onex = top.get("onex").and_then(|n| onex_section(n, node_type, d));
    if let Some(n) = top.get("state_machine") {
        fsm::validate(n, "state_machine", d);
    }
    if let Some(n) = top.get("state_transitions") {
        fsm::validate(n, "state_transitions", d);
    }
    if let Some(n) = top.get("workflow_coordination") {
        workflow::validate(n, "workflow_coordination", d);
    }
    let routing = top.get("handler_routing").and_then(|n| handler_routing(n, ctx, d));

    let node_type = node_type?;
    let needs_worker = |d: &mut Decoder<'_>, pos: Pos, path: &str, reason: String| {
        d.info(
            pos,
            path,
            format!("this node needs a worker: {reason}"),
            Some(
                "envelopes sent to it get a WORKER_REQUIRED error until a worker or a native implementation serves it"
                    .into(),
            ),
            None,
        );
        NodeKind::NeedsWorker { node_type: node_type.canonical().to_owned(), reason }
    };
    let kind = match node_type {
        NodeType::Effect => match routing {
            Some(Routing::Routes(routes)) => NodeKind::Effect { routes },
            Some(Routing::Worker(pos, reason)) => needs_worker(d, pos, "handler_routing", reason),
            None => needs_worker(
                d,
                top.key_pos("node_type"),
                "node_type",
                "the EFFECT node declares no executable `handler_routing`".into(),
            ),
        },
        NodeType::Compute => match onex.and_then(|o| o.jq) {
            Some(jq) => {
                let mut operations = io_ops;
                if let Some(extra) =
                    top.get("onex").and_then(|n| n.get("operations")).and_then(|n| d.strings(n, "onex.operations"))
                {
                    for (op, _, _) in extra {
                        if !operations.iter().any(|o: &Operation| o.as_str() == op) {
                            operations.push(Operation::new(op));
                        }
                    }
                }
                NodeKind::Compute { jq, operations }
            }
            None => needs_worker(
                d,
                top.key_pos("node_type"),
                "node_type",
                "the COMPUTE node has no `onex.compute.jq` expression".into(),
            ),
        },
        NodeType::Reducer => needs_worker(
            d,
            top.key_pos("node_type"),
            "node_type",
            "REDUCER nodes are not executed by this version of onex".into(),
        ),
        NodeType::Orchestrator => needs_worker(
            d,
            top.key_pos("node_type"),
            "node_type",
            "ORCHESTRATOR nodes are not executed by this version of onex".into(),
        ),
    };
    Some(DecodedNode { kind, subscribe, publish, description })
}

/// A version written as `{major, minor, patch}` or as a string.
pub fn version_value(node: &Node, path: &str, d: &mut Decoder<'_>) {
    match &node.kind {
        Kind::Map(_) => {
            if let Some(f) = d.map(node, path) {
                d.deny_unknown(&f, path, &["major", "minor", "patch"]);
                for k in ["major", "minor", "patch"] {
                    if let Some(n) = d.required(&f, k, path) {
                        d.int(n, &join(path, k), 0..=i64::from(u32::MAX));
                    }
                }
            }
        }
        Kind::String(_) => {}
        _ => {
            d.error(
                node.pos,
                path,
                format!("`{path}` must be a map `{{major, minor, patch}}` or a string, found {}", node.type_name()),
                None,
                Some(format!("write `{path}: {{major: 1, minor: 0, patch: 0}}`")),
            );
        }
    }
}

fn onex_section(node: &Node, node_type: Option<NodeType>, d: &mut Decoder<'_>) -> Option<OnexSection> {
    let f = d.map(node, "onex")?;
    d.deny_unknown(&f, "onex", &["compute", "operations"]);
    let mut jq = None;
    if let Some(c) = f.get("compute") {
        if node_type.is_some_and(|t| t != NodeType::Compute) {
            d.error(
                f.key_pos("compute"),
                "onex.compute",
                "`onex.compute` is only for COMPUTE_GENERIC nodes".into(),
                None,
                Some("remove `onex.compute`, or set `node_type: COMPUTE_GENERIC`".into()),
            );
        }
        if let Some(cf) = d.map(c, "onex.compute") {
            d.deny_unknown(&cf, "onex.compute", &["jq"]);
            jq = d.required(&cf, "jq", "onex.compute").and_then(|n| d.non_empty_string(n, "onex.compute.jq"));
        }
    }
    Some(OnexSection { jq })
}

/// The onex-specific `onex:` section.
struct OnexSection {
    jq: Option<String>,
}

fn io_operations(node: &Node, d: &mut Decoder<'_>) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (i, item) in d.list(node, "io_operations").unwrap_or_default().iter().enumerate() {
        let p = index("io_operations", i);
        let Some(f) = d.map(item, &p) else {
            continue;
        };
        d.deny_unknown(&f, &p, &IO_OP_KEYS);
        match f.get_any(&["operation", "name"]) {
            Some((k, n)) => {
                if let Some(op) = d.non_empty_string(n, &join(&p, k)) {
                    ops.push(Operation::new(op));
                }
            }
            None => {
                d.required(&f, "operation", &p);
            }
        }
    }
    ops
}

fn event_bus(node: &Node, ctx: &NodeContext<'_>, d: &mut Decoder<'_>) -> (Vec<TopicName>, Option<TopicName>) {
    let Some(f) = d.map(node, "event_bus") else {
        return (Vec::new(), None);
    };
    d.deny_unknown(&f, "event_bus", &BUS_KEYS);
    if let Some(v) = f.get("version") {
        version_value(v, "event_bus.version", d);
    }
    if let Some(n) = f.get("plugin_managed") {
        d.bool(n, "event_bus.plugin_managed");
    }
    if let Some(n) = f.get("consumer_group") {
        d.non_empty_string(n, "event_bus.consumer_group");
    }
    if let Some(n) = f.get("consumer_purpose") {
        d.one_of(n, "event_bus.consumer_purpose", &["audit", "projection"]);
    }
    if let Some(n) = f.get("auto_offset_reset") {
        d.one_of(n, "event_bus.auto_offset_reset", &["earliest", "latest"]);
    }
    let mut subscribe = Vec::new();
    let mut publish = Vec::new();
    for key in ["subscribe_topics", "subscribe", "publish_topics", "publish", "dlq_topics"] {
        let Some(n) = f.get(key) else { continue };
        let topics = topic_list(n, &join("event_bus", key), ctx, d);
        match key {
            "subscribe_topics" | "subscribe" => subscribe.extend(topics),
            "publish_topics" | "publish" => publish.extend(topics),
            _ => {}
        }
    }
    (subscribe, publish.into_iter().next())
}

/// A list of topics, each a string or a `{topic, description, ...}` map.
fn topic_list(node: &Node, path: &str, ctx: &NodeContext<'_>, d: &mut Decoder<'_>) -> Vec<TopicName> {
    let mut out = Vec::new();
    for (i, item) in d.list(node, path).unwrap_or_default().iter().enumerate() {
        let p = index(path, i);
        let (raw, pos, at) = match &item.kind {
            Kind::Map(_) => {
                let Some(f) = d.map(item, &p) else { continue };
                d.deny_unknown(&f, &p, &TOPIC_ITEM_KEYS);
                let Some(n) = d.required(&f, "topic", &p) else {
                    continue;
                };
                let at = join(&p, "topic");
                let Some(s) = d.string(n, &at) else { continue };
                (s, n.pos, at)
            }
            _ => {
                let Some(s) = d.string(item, &p) else {
                    continue;
                };
                (s, item.pos, p)
            }
        };
        if let Some(t) = d.topic(&raw, pos, &at, ctx.convention) {
            out.push(t);
        }
    }
    out
}

enum Routing {
    Routes(Vec<Route>),
    Worker(Pos, String),
}

fn handler_routing(node: &Node, ctx: &NodeContext<'_>, d: &mut Decoder<'_>) -> Option<Routing> {
    let path = "handler_routing";
    let f = d.map(node, path)?;
    d.deny_unknown(&f, path, &ROUTING_KEYS);
    if let Some(v) = f.get("version") {
        version_value(v, "handler_routing.version", d);
    }
    let strategy = match f.get("routing_strategy") {
        Some(n) => d.one_of(
            n,
            "handler_routing.routing_strategy",
            &["operation_match", "payload_type_match", "topic_match", "topic_pattern"],
        ),
        None => Some("operation_match"),
    };
    let default_handler =
        f.get("default_handler").and_then(|n| d.non_empty_string(n, "handler_routing.default_handler"));
    let by_operation = strategy == Some("operation_match");
    let mut routes: Vec<Route> = Vec::new();
    if let Some(list) = f.get("handlers") {
        for (i, item) in d.list(list, "handler_routing.handlers").unwrap_or_default().iter().enumerate() {
            route_entry(item, &index("handler_routing.handlers", i), by_operation, ctx, &mut routes, d);
        }
    }
    if let Some(s) = strategy.filter(|s| *s != "operation_match") {
        return Some(Routing::Worker(
            f.key_pos("routing_strategy"),
            format!("`routing_strategy: {s}` is not executed by onex (only `operation_match` is)"),
        ));
    }
    if routes.is_empty() {
        let reason = match default_handler {
            Some(h) => format!("it routes only through `default_handler: {h}`, a Python class"),
            None => "`handler_routing` routes no operation".to_owned(),
        };
        return Some(Routing::Worker(f.node.pos, reason));
    }
    Some(Routing::Routes(routes))
}

fn route_entry(
    item: &Node,
    p: &str,
    by_operation: bool,
    ctx: &NodeContext<'_>,
    routes: &mut Vec<Route>,
    d: &mut Decoder<'_>,
) {
    let Some(e) = d.map(item, p) else {
        return;
    };
    d.deny_unknown(&e, p, &ROUTE_KEYS);
    let mut ops: Vec<Located> = Vec::new();
    if let Some(n) = e.get("operation") {
        if let Some(s) = d.non_empty_string(n, &join(p, "operation")) {
            ops.push((s, n.pos, join(p, "operation")));
        }
    }
    if let Some(n) = e.get("supported_operations") {
        ops.extend(d.strings(n, &join(p, "supported_operations")).unwrap_or_default());
    }
    if by_operation && ops.is_empty() {
        d.error(
            e.node.pos,
            p,
            "route names no operation".into(),
            Some("with `routing_strategy: operation_match` each entry says which operations it handles".into()),
            Some("add `operation: <name>` or `supported_operations: [...]`".into()),
        );
    }
    let py = e.get("handler").and_then(|n| {
        let hp = join(p, "handler");
        let h = d.map(n, &hp)?;
        d.deny_unknown(&h, &hp, &PY_HANDLER_KEYS);
        Some(h)
    });
    let type_src = e
        .get("handler_type")
        .map(|n| (n, join(p, "handler_type")))
        .or_else(|| py.and_then(|h| h.get("handler_type")).map(|n| (n, join(p, "handler.handler_type"))));
    let raw_type = type_src.as_ref().and_then(|(n, at)| d.string(n, at).map(|s| (s, n.pos, at.clone())));
    let binding_name =
        e.get("handler_binding").and_then(|n| d.non_empty_string(n, &join(p, "handler_binding")).map(|s| (s, n.pos)));
    let Some(target) = route_target(p, e.node.pos, raw_type, binding_name, py, ctx, d) else {
        return;
    };
    if !by_operation {
        return;
    }
    for (op, pos, at) in ops {
        if routes.iter().any(|r| r.operation.as_str() == op) {
            d.error(
                pos,
                &at,
                format!("operation `{op}` is routed twice"),
                None,
                Some(format!("keep one route for `{op}`")),
            );
            continue;
        }
        routes.push(Route { operation: Operation::new(op), target: target.clone() });
    }
}

fn route_target(
    p: &str,
    entry_pos: Pos,
    raw_type: Option<Located>,
    binding_name: Option<(String, Pos)>,
    py: Option<Fields<'_>>,
    ctx: &NodeContext<'_>,
    d: &mut Decoder<'_>,
) -> Option<RouteTarget> {
    let parsed = raw_type.as_ref().and_then(|(s, _, _)| HandlerType::parse(s));
    let runtime = ctx.runtime_file.map_or_else(|| "the runtime contract".to_owned(), |f| format!("`{}`", f.display()));
    let bound = |bindings: &[HandlerBinding]| {
        if bindings.is_empty() {
            "none".to_owned()
        } else {
            bindings
                .iter()
                .map(|b| format!("`{}` ({})", b.name, b.handler_type.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    if let Some((name, pos)) = binding_name {
        let at = join(p, "handler_binding");
        let Some(bindings) = ctx.bindings else {
            return Some(RouteTarget::Handler(name));
        };
        return match bindings.iter().find(|b| b.name == name) {
            Some(b) if parsed.is_some_and(|t| t != b.handler_type) => {
                d.error(
                    pos,
                    &at,
                    format!(
                        "handler binding `{name}` is a `{}` handler, but the route says `{}`",
                        b.handler_type.as_str(),
                        parsed.map_or("", HandlerType::as_str)
                    ),
                    None,
                    Some("make `handler_type` and the binding agree".into()),
                );
                None
            }
            Some(_) => Some(RouteTarget::Handler(name)),
            None => {
                d.error(pos, &at, format!("no handler binding named `{name}` in the runtime contract"), Some(format!("bound handlers: {}", bound(bindings))), Some(format!("add a binding `- type: ...\n    name: {name}` to `runtime.handlers` in {runtime}, or use one of the bound names")));
                None
            }
        };
    }
    if let Some(t) = parsed {
        let Some(bindings) = ctx.bindings else {
            return Some(RouteTarget::Handler(t.as_str().to_owned()));
        };
        let (pos, at) = raw_type.as_ref().map_or((entry_pos, p.to_owned()), |(_, pos, at)| (*pos, at.clone()));
        let matching: Vec<&HandlerBinding> = bindings.iter().filter(|b| b.handler_type == t).collect();
        return match matching.as_slice() {
            [one] => Some(RouteTarget::Handler(one.name.clone())),
            [] => {
                d.error(
                    pos,
                    &at,
                    format!("routes to a `{}` handler, but the runtime contract binds none", t.as_str()),
                    Some(format!("bound handlers: {}", bound(bindings))),
                    Some(format!("add `- type: {}` to `runtime.handlers` in {runtime}", t.as_str())),
                );
                None
            }
            many => {
                let names: Vec<String> = many.iter().map(|b| format!("`{}`", b.name)).collect();
                d.error(
                    pos,
                    &at,
                    format!("several `{}` handler bindings could serve this route: {}", t.as_str(), names.join(", ")),
                    None,
                    Some("add `handler_binding: <name>` to the route to pick one".into()),
                );
                None
            }
        };
    }
    let class = py.and_then(|h| {
        Some((h.get("name")?.as_str()?.to_owned(), h.get("module").and_then(Node::as_str).unwrap_or("").to_owned()))
    });
    match (class, raw_type) {
        (Some((class, module)), raw) => {
            let why = raw.map_or_else(String::new, |(s, _, _)| format!(" (`{s}` is not a handler type onex runs)"));
            d.info(
                py.map_or(entry_pos, |h| h.node.pos),
                &join(p, "handler"),
                format!("route needs a worker: Python class `{class}`{why}"),
                Some(format!("onex runs the handler types {}; other routes are served by a worker", known_types())),
                None,
            );
            Some(RouteTarget::Worker { class, module })
        }
        (None, Some((s, pos, at))) => {
            d.error(
                pos,
                &at,
                format!("unknown handler type `{s}`"),
                Some(format!("known handler types: {}", known_types())),
                Some(format!("write one of: {}", known_types())),
            );
            None
        }
        (None, None) => {
            d.error(
                entry_pos,
                p,
                "route names no handler".into(),
                None,
                Some("add `handler_type: <type>`, `handler_binding: <name>`, or `handler: {name, module}`".into()),
            );
            None
        }
    }
}

fn known_types() -> String {
    HandlerType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
}
