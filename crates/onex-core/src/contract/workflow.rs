//! Structural validation of orchestrator workflows (`workflow_coordination`).
//!
//! onex does not execute contract-declared orchestrators yet, but their
//! graphs are checked now: each step has a `node_id` and `node_type`,
//! `depends_on` and `edges` name existing steps, and the dependency graph
//! has no cycle (a cycle would deadlock the saga).

use std::collections::HashMap;

use super::decode::{Decoder, Located, index, join};
use super::yaml::{Node, Pos};

const COORDINATION_KEYS: [&str; 7] = [
    "version",
    "subcontract_version",
    "workflow_definition",
    "lifecycle",
    "subscriptions",
    "publications",
    "description",
];
const DEFINITION_KEYS: [&str; 3] = ["workflow_metadata", "execution_graph", "coordination_rules"];
const METADATA_KEYS: [&str; 8] = [
    "workflow_name",
    "workflow_version",
    "description",
    "execution_mode",
    "author",
    "tags",
    "documentation_url",
    "timeout_ms",
];
const GRAPH_KEYS: [&str; 2] = ["nodes", "edges"];
const STEP_KEYS: [&str; 9] = [
    "node_id",
    "node_type",
    "description",
    "depends_on",
    "node_name",
    "target_node_type",
    "contract_ref",
    "metadata",
    "step_config",
];
const EDGE_KEYS: [&str; 4] = ["from_node", "to_node", "edge_type", "description"];
const RULE_KEYS: [&str; 17] = [
    "parallel_execution_allowed",
    "failure_recovery_strategy",
    "max_retries",
    "timeout_ms",
    "execution_mode",
    "max_parallel_branches",
    "max_parallel_steps",
    "retry_backoff_ms",
    "retry_backoff_multiplier",
    "step_timeout_ms",
    "detect_cycles",
    "fail_on_cycle",
    "allow_partial_completion",
    "checkpoint_enabled",
    "rollback_enabled",
    "resource_constraints",
    "compensation_enabled",
];
const LIFECYCLE_KEYS: [&str; 4] =
    ["startup_sequence", "shutdown_sequence", "health_check_interval_ms", "graceful_shutdown_timeout_ms"];

/// Validates the workflow at `path`, reporting every problem.
pub fn validate(node: &Node, path: &str, d: &mut Decoder<'_>) {
    let Some(w) = d.map(node, path) else { return };
    d.deny_unknown(&w, path, &COORDINATION_KEYS);
    if let Some(l) = w.get("lifecycle").and_then(|n| d.map(n, &join(path, "lifecycle"))) {
        d.deny_unknown(&l, &join(path, "lifecycle"), &LIFECYCLE_KEYS);
    }
    for key in ["subscriptions", "publications"] {
        if let Some(n) = w.get(key) {
            d.list(n, &join(path, key));
        }
    }
    let dp = join(path, "workflow_definition");
    let Some(def) = d.required(&w, "workflow_definition", path).and_then(|n| d.map(n, &dp)) else {
        return;
    };
    d.deny_unknown(&def, &dp, &DEFINITION_KEYS);
    if let Some(m) = def.get("workflow_metadata").and_then(|n| d.map(n, &join(&dp, "workflow_metadata"))) {
        let mp = join(&dp, "workflow_metadata");
        d.deny_unknown(&m, &mp, &METADATA_KEYS);
        if let Some(n) = d.required(&m, "workflow_name", &mp) {
            d.non_empty_string(n, &join(&mp, "workflow_name"));
        }
    }
    if let Some(r) = def.get("coordination_rules").and_then(|n| d.map(n, &join(&dp, "coordination_rules"))) {
        let rp = join(&dp, "coordination_rules");
        d.deny_unknown(&r, &rp, &RULE_KEYS);
        if let Some(n) = r.get("failure_recovery_strategy") {
            d.one_of(n, &join(&rp, "failure_recovery_strategy"), &["fail_fast", "retry", "none", "compensate"]);
        }
    }
    let gp = join(&dp, "execution_graph");
    let Some(graph) = d.required(&def, "execution_graph", &dp).and_then(|n| d.map(n, &gp)) else {
        return;
    };
    d.deny_unknown(&graph, &gp, &GRAPH_KEYS);
    let np = join(&gp, "nodes");
    let steps_node = d.required(&graph, "nodes", &gp);
    let steps = steps_node.and_then(|n| d.list(n, &np)).unwrap_or_default();

    // Collect step ids first, so a dependency on a later step is fine.
    let mut ids: HashMap<String, Pos> = HashMap::new();
    let mut deps: Vec<(String, Vec<Located>)> = Vec::new();
    for (i, item) in steps.iter().enumerate() {
        let p = index(&np, i);
        let Some(s) = d.map(item, &p) else { continue };
        d.deny_unknown(&s, &p, &STEP_KEYS);
        if let Some(n) = d.required(&s, "node_type", &p) {
            d.non_empty_string(n, &join(&p, "node_type"));
        }
        let Some(id_node) = d.required(&s, "node_id", &p) else {
            continue;
        };
        let Some(id) = d.non_empty_string(id_node, &join(&p, "node_id")) else {
            continue;
        };
        if ids.insert(id.clone(), id_node.pos).is_some() {
            d.error(
                id_node.pos,
                &join(&p, "node_id"),
                format!("step `{id}` is declared twice"),
                None,
                Some("give each step a unique `node_id`".into()),
            );
            continue;
        }
        let on = s.get("depends_on").and_then(|n| d.strings(n, &join(&p, "depends_on"))).unwrap_or_default();
        deps.push((id, on));
    }
    if let Some(edges) = graph.get("edges") {
        let ep = join(&gp, "edges");
        for (i, item) in d.list(edges, &ep).unwrap_or_default().iter().enumerate() {
            let p = index(&ep, i);
            let Some(e) = d.map(item, &p) else { continue };
            d.deny_unknown(&e, &p, &EDGE_KEYS);
            let from =
                d.required(&e, "from_node", &p).and_then(|n| d.string(n, &join(&p, "from_node")).map(|s| (s, n.pos)));
            let to = d.required(&e, "to_node", &p).and_then(|n| d.string(n, &join(&p, "to_node")).map(|s| (s, n.pos)));
            let (Some((from, from_pos)), Some((to, to_pos))) = (from, to) else {
                continue;
            };
            unknown_step(&ids, &to, to_pos, &join(&p, "to_node"), d);
            if let Some(entry) = deps.iter_mut().find(|(id, _)| *id == to) {
                entry.1.push((from, from_pos, join(&p, "from_node")));
            } else {
                unknown_step(&ids, &from, from_pos, &join(&p, "from_node"), d);
            }
        }
    }
    for (_, on) in &deps {
        for (dep, pos, at) in on {
            unknown_step(&ids, dep, *pos, at, d);
        }
    }
    if let Some(cycle) = find_cycle(&deps) {
        let pos = ids.get(&cycle[0]).copied().unwrap_or(node.pos);
        d.error(
            pos,
            &np,
            format!("the workflow has a dependency cycle: {}", cycle.join(" → ")),
            Some("steps wait on each other forever".into()),
            Some("remove one of the `depends_on` entries in the cycle".into()),
        );
    }
}

fn unknown_step(ids: &HashMap<String, Pos>, name: &str, pos: Pos, at: &str, d: &mut Decoder<'_>) {
    if ids.contains_key(name) {
        return;
    }
    let mut known: Vec<&str> = ids.keys().map(String::as_str).collect();
    known.sort_unstable();
    let guess = super::decode::did_you_mean(name, &known);
    d.error(
        pos,
        at,
        format!("step `{name}` does not exist in the execution graph"),
        Some(guess.map_or_else(|| format!("steps: {}", known.join(", ")), |g| format!("did you mean `{g}`?"))),
        Some("name a `node_id` of `execution_graph.nodes`".into()),
    );
}

/// A cycle in the `depends_on` graph, as the ids along it (first repeated at the end).
fn find_cycle(deps: &[(String, Vec<Located>)]) -> Option<Vec<String>> {
    let edges: HashMap<&str, Vec<&str>> =
        deps.iter().map(|(id, on)| (id.as_str(), on.iter().map(|(d, _, _)| d.as_str()).collect())).collect();
    // 0 = unvisited, 1 = on the current path, 2 = done. Iterative to keep the stack flat.
    let mut state: HashMap<&str, u8> = HashMap::new();
    for (start, _) in deps {
        if state.get(start.as_str()).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
        state.insert(start.as_str(), 1);
        while let Some((id, next)) = path.last().copied() {
            let succ = edges.get(id).map(Vec::as_slice).unwrap_or_default();
            if let Some(&to) = succ.get(next) {
                if let Some(top) = path.last_mut() {
                    top.1 += 1;
                }
                match state.get(to).copied().unwrap_or(0) {
                    0 if edges.contains_key(to) => {
                        state.insert(to, 1);
                        path.push((to, 0));
                    }
                    1 => {
                        let from = path.iter().position(|(p, _)| *p == to).unwrap_or(0);
                        let mut cycle: Vec<String> = path[from..].iter().map(|(p, _)| (*p).to_owned()).collect();
                        cycle.push(to.to_owned());
                        return Some(cycle);
                    }
                    _ => {}
                }
            } else {
                state.insert(id, 2);
                path.pop();
            }
        }
    }
    None
}
