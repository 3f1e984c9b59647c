//! Structural validation of reducer state machines (`state_machine`, `state_transitions`).
//!
//! onex does not execute contract-declared reducers yet, but a broken state
//! machine is still a broken contract: states must be declared once,
//! transitions and the initial state must name declared states (`*` means
//! "from any state"), and the keys are checked against the two spellings of
//! the ONEX model (shapes doc §6).

use std::collections::HashSet;

use super::decode::{Decoder, index, join};
use super::yaml::Node;

const MACHINE_KEYS: [&str; 14] = [
    "state_machine_name",
    "initial_state",
    "states",
    "transitions",
    "persistence_enabled",
    "terminal_states",
    "description",
    "version",
    "state_machine_version",
    "error_states",
    "recovery_enabled",
    "recovery_strategies",
    "operations",
    "metadata",
];
const STATE_KEYS: [&str; 10] = [
    "state_name",
    "description",
    "entry_actions",
    "exit_actions",
    "required_data",
    "is_terminal",
    "state_type",
    "metadata",
    "version",
    "timeout_ms",
];
const TRANSITION_KEYS: [&str; 8] =
    ["from_state", "to_state", "trigger", "description", "conditions", "actions", "transition_name", "version"];
const CONDITION_KEYS: [&str; 6] =
    ["condition_name", "expression", "required", "description", "condition_type", "version"];
const ACTION_KEYS: [&str; 7] =
    ["action_name", "action_type", "is_critical", "timeout_ms", "version", "description", "parameters"];

/// Validates the state machine at `path`, reporting every problem.
pub fn validate(node: &Node, path: &str, d: &mut Decoder<'_>) {
    let Some(m) = d.map(node, path) else {
        return;
    };
    d.deny_unknown(&m, path, &MACHINE_KEYS);
    let mut states: HashSet<String> = HashSet::new();
    if let Some(list) = d.required(&m, "states", path) {
        let sp = join(path, "states");
        for (i, item) in d.list(list, &sp).unwrap_or_default().iter().enumerate() {
            let p = index(&sp, i);
            let Some(s) = d.map(item, &p) else { continue };
            d.deny_unknown(&s, &p, &STATE_KEYS);
            let Some(name_node) = d.required(&s, "state_name", &p) else {
                continue;
            };
            let Some(name) = d.non_empty_string(name_node, &join(&p, "state_name")) else {
                continue;
            };
            if !states.insert(name.clone()) {
                d.error(
                    name_node.pos,
                    &join(&p, "state_name"),
                    format!("state `{name}` is declared twice"),
                    None,
                    Some("give each state a unique `state_name`".into()),
                );
            }
        }
    }
    let check_state =
        |d: &mut Decoder<'_>, n: &Node, at: &str, wildcard: bool| {
            let Some(s) = d.non_empty_string(n, at) else {
                return;
            };
            if (wildcard && s == "*") || states.is_empty() || states.contains(&s) {
                return;
            }
            let mut known: Vec<&str> = states.iter().map(String::as_str).collect();
            known.sort_unstable();
            let guess = super::decode::did_you_mean(&s, &known);
            d.error(
                n.pos,
                at,
                format!("state `{s}` is not declared in `states`"),
                Some(guess.map_or_else(
                    || format!("declared states: {}", known.join(", ")),
                    |g| format!("did you mean `{g}`?"),
                )),
                Some("declare the state, or use one of the declared ones".into()),
            );
        };
    if let Some(n) = d.required(&m, "initial_state", path) {
        check_state(d, n, &join(path, "initial_state"), false);
    }
    if let Some(list) = m.get("terminal_states") {
        let tp = join(path, "terminal_states");
        for (i, item) in d.list(list, &tp).unwrap_or_default().iter().enumerate() {
            check_state(d, item, &index(&tp, i), false);
        }
    }
    if let Some(list) = m.get("transitions") {
        let tp = join(path, "transitions");
        for (i, item) in d.list(list, &tp).unwrap_or_default().iter().enumerate() {
            let p = index(&tp, i);
            let Some(t) = d.map(item, &p) else { continue };
            d.deny_unknown(&t, &p, &TRANSITION_KEYS);
            if let Some(n) = d.required(&t, "from_state", &p) {
                check_state(d, n, &join(&p, "from_state"), true);
            }
            if let Some(n) = d.required(&t, "to_state", &p) {
                check_state(d, n, &join(&p, "to_state"), false);
            }
            if let Some(n) = d.required(&t, "trigger", &p) {
                d.non_empty_string(n, &join(&p, "trigger"));
            }
            for (key, allowed) in [("conditions", &CONDITION_KEYS[..]), ("actions", &ACTION_KEYS[..])] {
                let Some(list) = t.get(key) else { continue };
                let lp = join(&p, key);
                for (j, c) in d.list(list, &lp).unwrap_or_default().iter().enumerate() {
                    let cp = index(&lp, j);
                    if let Some(cf) = d.map(c, &cp) {
                        d.deny_unknown(&cf, &cp, allowed);
                    }
                }
            }
        }
    }
}
