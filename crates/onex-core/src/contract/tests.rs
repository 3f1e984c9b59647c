//! Loader tests over the shared fixtures (`tests/fixtures/contracts/`) and inline contracts.

#![allow(clippy::panic, reason = "a test fails by panicking")]

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use std::time::Duration;

use super::*;
use crate::envelope::Operation;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/contracts")
}

/// Every fixture file, keyed by its path relative to the fixtures directory.
fn fixtures() -> MapSources {
    let mut sources = MapSources::new();
    let root = fixtures_dir();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let rel = path.strip_prefix(&root).unwrap_or(&path).to_path_buf();
                sources.files.insert(rel, text);
            }
        }
    }
    sources
}

fn load_ok(path: &str, sources: &MapSources) -> Loaded {
    load_runtime_contract(Path::new(path), sources).unwrap_or_else(|e| panic!("{}", render_human(&e.0, sources)))
}

fn load_err(path: &str, sources: &MapSources) -> Vec<Diagnostic> {
    match load_runtime_contract(Path::new(path), sources) {
        Ok(_) => panic!("{path} loaded but should not"),
        Err(e) => e.0.into_iter().filter(|d| d.severity == Severity::Error).collect(),
    }
}

/// An inline runtime contract under `onex.yaml` plus extra files.
fn inline(src: &str, files: &[(&str, &str)]) -> MapSources {
    let mut s = MapSources::new().with_file("onex.yaml", src);
    for (p, t) in files {
        s = s.with_file(*p, *t);
    }
    s
}

const BUS: &str = "  event_bus:\n    kind: memory\n    config:\n      topics: {input: onex.acme.orders.cmd.v1, output: onex.acme.orders.evt.v1}\n";

fn runtime_with(extra: &str) -> String {
    format!("runtime:\n  name: orders\n{BUS}{extra}")
}

#[test]
fn valid_fixture_loads_with_defaults_and_interpolation() {
    let sources = fixtures();
    let loaded = load_ok("runtime.yaml", &sources);
    let c = &loaded.contract;
    assert_eq!(c.version, ContractVersion::V0_2);
    assert_eq!(c.runtime.name, "hello");
    assert_eq!(c.event_bus.dlq_topic.as_str(), "onex.acme.hello.dlq.v1");
    assert_eq!(c.handlers.len(), 3);
    let http = &c.handlers[1];
    assert_eq!(http.timeout, std::time::Duration::from_millis(30_000));
    assert_eq!(http.rate_limit.map(|r| (r.per_second, r.burst.get(), r.mode)), Some((50.0, 50, RateLimitMode::Wait)));
    assert_eq!(http.config.get("max_connections"), Some(&serde_json::json!(32)));
    assert_eq!(http.config.get("base_url"), Some(&serde_json::json!("http://127.0.0.1:8080")));
    assert_eq!(c.nodes.len(), 2);
    match &c.nodes[0].kind {
        NodeKind::Effect { routes } => {
            let ops: Vec<&str> = routes.iter().map(|r| r.operation.as_str()).collect();
            assert_eq!(ops, ["local.echo", "local.transform", "local.error"]);
            assert!(routes.iter().all(|r| r.target == RouteTarget::Handler("local".into())));
        }
        other => panic!("greeter is {other:?}"),
    }
    match &c.nodes[1].kind {
        NodeKind::Compute { jq, operations } => {
            assert!(jq.contains("ascii_upcase"));
            assert_eq!(operations, &[Operation::new("shout")]);
        }
        other => panic!("shouter is {other:?}"),
    }
    assert_eq!(c.nodes[1].subscribe_topics, c.event_bus.input_topics);
    assert!(loaded.notes.iter().all(|n| n.severity == Severity::Info), "{:?}", loaded.notes);
}

#[test]
fn three_mistakes_are_all_reported_with_their_lines_in_one_run() {
    let errors = load_err("three_mistakes.yaml", &fixtures());
    let found: Vec<(usize, &str)> = errors.iter().map(|d| (d.line, d.path.as_str())).collect();
    assert_eq!(
        found,
        [(6, "runtime.enviroment"), (11, "runtime.event_bus.config.topics.input"), (14, "runtime.handlers[0].type")],
        "{errors:#?}"
    );
    assert_eq!(errors[0].hint.as_deref(), Some("did you mean `environment`?"));
    assert!(errors[1].hint.as_deref().unwrap_or("").contains("`acme`"), "{:?}", errors[1].hint);
    assert!(errors[2].message.contains("unknown handler type `kafkaa`"));
    assert!(errors[2].hint.as_deref().unwrap_or("").contains("local, http, db, vault, consul"));
}

#[test]
fn v0_1_contract_loads_with_one_warning_per_deprecated_field() {
    let loaded = load_ok("runtime_v01.yaml", &fixtures());
    let warnings: Vec<&Diagnostic> = loaded.notes.iter().filter(|d| d.severity == Severity::Warning).collect();
    assert_eq!(warnings.len(), 5, "{warnings:#?}");
    for (old, new) in [
        ("type", "kind"),
        ("input_topic", "config.topics.input"),
        ("output_topic", "config.topics.output"),
        ("timeout_seconds", "timeout_ms"),
        ("contract_path", "contract"),
    ] {
        assert!(
            warnings
                .iter()
                .any(|w| w.message.contains(&format!("`{old}` is deprecated"))
                    && w.message.contains(&format!("`{new}`"))),
            "{old}"
        );
    }
    let c = loaded.contract;
    assert_eq!(c.version, ContractVersion::V0_1);
    assert_eq!(c.handlers[0].timeout, std::time::Duration::from_secs(5));
    assert_eq!(c.event_bus.output_topic.as_str(), "onex.acme.legacy.evt.v1");
}

#[test]
fn v0_1_contract_with_a_beta_field_asks_for_version_0_2() {
    let src = "contract_version: \"0.1\"\nruntime:\n  name: legacy\n  event_bus: {type: inmemory, input_topic: onex.a.b.cmd.v1, output_topic: onex.a.b.evt.v1}\n  handlers:\n    - type: vault\n    - type: http\n      retry_policy: {max_retries: 1}\n";
    let errors = load_err("onex.yaml", &inline(src, &[]));
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors.iter().all(|e| e.message.contains("needs contract_version 0.2")));
    assert_eq!((errors[0].line, errors[1].line), (6, 8));
    assert!(errors[0].fix.as_deref().unwrap_or("").contains("docs/contracts.md#upgrading"));
}

#[test]
fn v0_2_contract_using_a_v0_1_name_is_an_error_naming_the_replacement() {
    let src = "runtime:\n  name: x\n  event_bus: {kind: memory, input_topic: onex.a.b.cmd.v1, config: {topics: {output: onex.a.b.evt.v1}}}\n";
    let errors = load_err("onex.yaml", &inline(src, &[]));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].message.contains("replaced by `config.topics.input`"));
}

#[test]
fn unknown_version_lists_the_supported_ones_and_how_to_upgrade() {
    let errors = load_err("onex.yaml", &inline(&format!("contract_version: \"0.9\"\n{}", runtime_with("")), &[]));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 1);
    assert!(errors[0].hint.as_deref().unwrap_or("").contains("0.1, 0.2"));
    assert!(errors[0].fix.as_deref().unwrap_or("").contains(UPGRADE_DOC));
}

#[test]
fn version_may_be_written_as_a_map_or_a_number() {
    for v in ["{major: 0, minor: 2, patch: 0}", "0.2", "\"0.2.0\""] {
        let loaded = load_ok("onex.yaml", &inline(&format!("contract_version: {v}\n{}", runtime_with("")), &[]));
        assert_eq!(loaded.contract.version, ContractVersion::V0_2, "{v}");
    }
}

#[test]
fn local_handler_in_prod_is_an_error() {
    let src = runtime_with("  handlers:\n    - type: local\n")
        .replace("name: orders\n", "name: orders\n  environment: prod\n");
    let errors = load_err("onex.yaml", &inline(&src, &[]));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].message, "the local handler is dev-only");
    assert_eq!((errors[0].line, errors[0].column), (9, 13));
}

#[test]
fn duplicate_handler_bindings_and_slugs_are_errors() {
    let src = runtime_with(
        "  handlers:\n    - type: http\n    - type: http\n    - {type: db, name: a}\n    - {type: http, name: a}\n  nodes:\n    - slug: n1\n    - slug: n1\n",
    );
    let errors = load_err("onex.yaml", &inline(&src, &[]));
    let msgs: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "handler binding `http` is declared twice",
            "handler binding `a` is declared twice",
            "node slug `n1` is used twice"
        ]
    );
    assert_eq!(errors[0].fix.as_deref(), Some("give each `http` binding a distinct `name:`"));
    assert_eq!(errors[2].line, 14);
}

#[test]
fn two_bindings_of_one_type_with_distinct_names_are_fine() {
    let loaded = load_ok(
        "onex.yaml",
        &inline(&runtime_with("  handlers:\n    - {type: http, name: api}\n    - {type: http, name: cdn}\n"), &[]),
    );
    assert_eq!(loaded.contract.handlers.len(), 2);
}

#[test]
fn missing_node_contract_file_is_an_error_at_the_reference() {
    let errors = load_err(
        "onex.yaml",
        &inline(&runtime_with("  nodes:\n    - slug: n1\n      contract: nodes/missing.yaml\n"), &[]),
    );
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].line, errors[0].path.as_str()), (9, "runtime.nodes[0].contract"));
    assert!(errors[0].message.contains("nodes/missing.yaml"));
}

#[test]
fn missing_config_ref_file_is_an_error() {
    let errors = load_err(
        "onex.yaml",
        &inline(&runtime_with("  handlers:\n    - type: http\n      config_ref: nope.yaml\n"), &[]),
    );
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("config_ref file `nope.yaml` cannot be read"));
}

#[test]
fn unset_variable_is_reported_with_its_location() {
    let src = runtime_with("  handlers:\n    - type: http\n      config:\n        url: \"${API_URL}\"\n");
    let errors = load_err("onex.yaml", &inline(&src, &[]));
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].line, errors[0].path.as_str()), (10, "runtime.handlers[0].config.url"));
    assert!(errors[0].message.contains("`API_URL`"));
}

#[test]
fn interpolated_placeholder_is_typed_after_substitution() {
    let src = runtime_with("  handlers:\n    - type: http\n      timeout_ms: ${T:-30}\n");
    let loaded = load_ok("onex.yaml", &inline(&src, &[]));
    assert_eq!(loaded.contract.handlers[0].timeout, std::time::Duration::from_millis(30));
    let sources = inline(&src, &[]).with_env("T", "45");
    assert_eq!(load_ok("onex.yaml", &sources).contract.handlers[0].timeout, std::time::Duration::from_millis(45));
}

#[test]
fn nested_timeout_and_retry_in_config_are_accepted_and_binding_level_wins() {
    let src = runtime_with(
        "  handlers:\n    - type: http\n      timeout_ms: 500\n      config:\n        timeout_ms: 9000\n        retry_policy: {max_retries: 7, backoff_strategy: fixed}\n        pool: 3\n",
    );
    let h = &load_ok("onex.yaml", &inline(&src, &[])).contract.handlers[0];
    assert_eq!(h.timeout, std::time::Duration::from_millis(500));
    assert_eq!((h.retry_policy.max_retries, h.retry_policy.backoff), (7, Backoff::Fixed));
    assert_eq!(h.config.len(), 1);
}

#[test]
fn retry_policy_max_below_base_is_an_error() {
    let src =
        runtime_with("  handlers:\n    - type: http\n      retry_policy: {base_delay_ms: 500, max_delay_ms: 100}\n");
    let errors = load_err("onex.yaml", &inline(&src, &[]));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("max_delay_ms (100) is less than base_delay_ms (500)"));
}

#[test]
fn local_handler_config_accepts_no_keys() {
    let errors = load_err(
        "onex.yaml",
        &inline(&runtime_with("  handlers:\n    - type: local\n      config: {verbose: true}\n"), &[]),
    );
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "runtime.handlers[0].config.verbose");
}

#[test]
fn settings_outside_runtime_are_an_error_saying_where_they_belong() {
    let src = format!("{}handlers: []\n", runtime_with(""));
    let errors = load_err("onex.yaml", &inline(&src, &[]));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].message, "`handlers` must be under `runtime:`");
}

#[test]
fn kafka_bus_keeps_backend_settings_and_refuses_memory_ones() {
    let src = "runtime:\n  name: k\n  event_bus:\n    kind: kafka\n    config:\n      bootstrap_servers: \"${KAFKA:-127.0.0.1:9092}\"\n      topics: {input: onex.a.b.cmd.v1, output: onex.a.b.evt.v1}\n";
    let bus = load_ok("onex.yaml", &inline(src, &[])).contract.event_bus;
    assert_eq!(bus.kind, BusKind::Kafka);
    assert_eq!(bus.backend_config.get("bootstrap_servers"), Some(&serde_json::json!("127.0.0.1:9092")));
    assert_eq!(bus.consumer_group, "k");
    let errors = load_err("onex.yaml", &inline(&src.replace("      topics", "      partitions: 4\n      topics"), &[]));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("only applies to `kind: memory`"));
}

#[test]
fn input_topics_may_be_one_or_many() {
    let src = runtime_with("")
        .replace("input: onex.acme.orders.cmd.v1", "input: [onex.acme.orders.cmd.v1, onex.acme.billing.cmd.v2]");
    assert_eq!(load_ok("onex.yaml", &inline(&src, &[])).contract.event_bus.input_topics.len(), 2);
}

#[test]
fn topic_of_the_other_convention_suggests_topic_convention() {
    let src = runtime_with("").replace("onex.acme.orders.cmd.v1", "onex.cmd.acme.order-placed.v1");
    let errors = load_err("onex.yaml", &inline(&src, &[]));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].hint.as_deref().unwrap_or("").contains("topic_convention: onex_kind"));
}

const EFFECT_HTTP: &str = "contract_version: {major: 1, minor: 0, patch: 0}\nnode_type: effect\nhandler_routing:\n  handlers:\n    - {operation: http.get, handler_type: http}\n";

#[test]
fn routing_to_an_unbound_handler_type_lists_the_bound_ones() {
    let src = runtime_with("  handlers:\n    - type: db\n  nodes:\n    - {slug: n, contract: n.yaml}\n");
    let errors = load_err("onex.yaml", &inline(&src, &[("n.yaml", EFFECT_HTTP)]));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].file.as_path(), errors[0].line), (Path::new("n.yaml"), 5));
    assert!(errors[0].hint.as_deref().unwrap_or("").contains("`db` (db)"));
    assert!(errors[0].fix.as_deref().unwrap_or("").contains("- type: http"));
}

#[test]
fn two_nodes_claiming_one_operation_on_one_topic_is_ambiguous() {
    let src = runtime_with(
        "  handlers:\n    - type: http\n  nodes:\n    - {slug: a, contract: n.yaml}\n    - {slug: b, contract: n.yaml}\n",
    );
    let errors = load_err("onex.yaml", &inline(&src, &[("n.yaml", EFFECT_HTTP)]));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("nodes `a` and `b` both handle operation `http.get`"));
    assert_eq!(errors[0].line, 11);
}

#[test]
fn real_onex_fixtures_load_with_info_notes_and_needs_a_worker() {
    let loaded = load_ok("runtime_onex.yaml", &fixtures());
    let nodes = &loaded.contract.nodes;
    match &nodes[0].kind {
        NodeKind::Effect { routes } => {
            let targets: Vec<(&str, &RouteTarget)> = routes.iter().map(|r| (r.operation.as_str(), &r.target)).collect();
            assert_eq!(targets[0], ("http.post", &RouteTarget::Handler("http".into())));
            assert_eq!(targets[1], ("db.query", &RouteTarget::Handler("registry_db".into())));
            assert!(matches!(targets[3].1, RouteTarget::Worker { class, .. } if class == "HandlerNodeIntrospected"));
        }
        other => panic!("effect is {other:?}"),
    }
    assert_eq!(nodes[0].publish_topic.as_str(), "onex.evt.platform.registration-result.v1");
    assert!(nodes[0].description.as_deref().unwrap_or("").ends_with("#magic___^_^___line"));
    for (i, reason) in
        [(1, "onex.compute.jq"), (2, "REDUCER nodes are not executed"), (3, "ORCHESTRATOR nodes are not executed")]
    {
        assert!(
            matches!(&nodes[i].kind, NodeKind::NeedsWorker { reason: r, .. } if r.contains(reason)),
            "{:?}",
            nodes[i].kind
        );
    }
    let infos: Vec<&str> =
        loaded.notes.iter().filter(|n| n.severity == Severity::Info).map(|n| n.message.as_str()).collect();
    for key in [
        "name",
        "contract_name",
        "node_version",
        "input_model",
        "output_model",
        "metadata",
        "error_handling",
        "health_check",
    ] {
        assert!(
            infos.contains(&format!("`{key}` is a known ONEX key that onex does not use").as_str()),
            "{key}: {infos:#?}"
        );
    }
    assert_eq!(infos.iter().filter(|m| m.contains("needs a worker")).count(), 4, "{infos:#?}");
}

#[test]
fn unknown_node_key_suggests_the_closest_known_one() {
    let src = "contract_version: {major: 1, minor: 0, patch: 0}\nnode_type: COMPUTE_GENERIC\nhandler_routnig: {}\n";
    let diags = validate_file(Path::new("n.yaml"), &MapSources::new().with_file("n.yaml", src));
    let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.severity == Severity::Error).collect();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].line, errors[0].hint.as_deref()), (3, Some("did you mean `handler_routing`?")));
}

#[test]
fn unknown_node_type_lists_the_known_ones() {
    let src = "contract_version: {major: 1, minor: 0, patch: 0}\nnode_type: GATEWAY\n";
    let diags = validate_file(Path::new("n.yaml"), &MapSources::new().with_file("n.yaml", src));
    assert_eq!(diags.len(), 1);
    assert!(diags[0].message.contains("EFFECT_GENERIC, COMPUTE_GENERIC, REDUCER_GENERIC, ORCHESTRATOR_GENERIC"));
}

#[test]
fn workflow_dependency_on_a_missing_step_and_cycles_are_errors() {
    let src = "contract_version: {major: 1, minor: 0, patch: 0}\nnode_type: ORCHESTRATOR_GENERIC\nworkflow_coordination:\n  workflow_definition:\n    execution_graph:\n      nodes:\n        - {node_id: a, node_type: EFFECT_GENERIC, depends_on: [c]}\n        - {node_id: b, node_type: EFFECT_GENERIC, depends_on: [a, zz]}\n        - {node_id: c, node_type: EFFECT_GENERIC, depends_on: [b]}\n";
    let diags = validate_file(Path::new("w.yaml"), &MapSources::new().with_file("w.yaml", src));
    let errors: Vec<&str> =
        diags.iter().filter(|d| d.severity == Severity::Error).map(|d| d.message.as_str()).collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors.iter().any(|m| m.contains("step `zz` does not exist")));
    assert!(errors.iter().any(|m| m.contains("dependency cycle")));
}

#[test]
fn state_machine_transition_to_an_undeclared_state_is_an_error() {
    let src = "contract_version: {major: 1, minor: 0, patch: 0}\nnode_type: reducer\nstate_machine:\n  initial_state: idle\n  states:\n    - state_name: idle\n    - state_name: done\n  transitions:\n    - {from_state: idle, to_state: dnoe, trigger: go}\n";
    let diags = validate_file(Path::new("r.yaml"), &MapSources::new().with_file("r.yaml", src));
    let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.severity == Severity::Error).collect();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].line, errors[0].hint.as_deref()), (9, Some("did you mean `done`?")));
}

#[test]
fn validate_file_accepts_standalone_real_onex_node_contracts() {
    let sources = fixtures();
    for f in [
        "nodes/onex_registration_effect.yaml",
        "nodes/onex_verification_emitter.yaml",
        "nodes/onex_registration_reducer.yaml",
        "nodes/onex_registration_orchestrator.yaml",
        "nodes/greeter.yaml",
        "nodes/shouter.yaml",
    ] {
        let diags = validate_file(Path::new(f), &sources);
        assert!(diags.iter().all(|d| d.severity != Severity::Error), "{f}: {}", render_human(&diags, &sources));
    }
}

#[test]
fn yaml_syntax_error_is_one_located_diagnostic() {
    let errors = load_err("onex.yaml", &inline("runtime:\n  name: [x\n", &[]));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.starts_with("invalid YAML"));
    assert!(errors[0].line >= 2);
}

#[test]
fn human_rendering_shows_source_line_caret_field_hint_fix_and_summary() {
    let sources = fixtures();
    let diags = validate_file(Path::new("three_mistakes.yaml"), &sources);
    let text = render_human(&diags, &sources);
    assert!(text.contains("error: unknown field `enviroment` in `runtime`\n --> three_mistakes.yaml:6:3\n  |\n6 |   enviroment: dev\n  |   ^\n  = field: runtime.enviroment\n  = hint: did you mean `environment`?\n  = fix: rename `enviroment` to `environment`\n"), "{text}");
    assert!(text.ends_with("contract is invalid: 3 errors, 0 warnings, 0 notes\n"), "{text}");
}

#[test]
fn json_rendering_is_an_array_of_diagnostics() {
    let diags = validate_file(Path::new("three_mistakes.yaml"), &fixtures());
    let json: serde_json::Value = serde_json::from_str(&render_json(&diags)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json.as_array().map(Vec::len), Some(3));
    assert_eq!(json[0]["severity"], "error");
    assert_eq!(json[0]["line"], 6);
}

// --- Resilience settings of a handler binding (retry, breaker, rate limit, dead letters) ---

fn binding(yaml: &str) -> HandlerBinding {
    let src = runtime_with(&format!("  handlers:\n    - type: http\n{yaml}"));
    load_ok("onex.yaml", &inline(&src, &[])).contract.handlers.remove(0)
}

fn binding_errors(yaml: &str) -> Vec<Diagnostic> {
    let src = runtime_with(&format!("  handlers:\n    - type: http\n{yaml}"));
    load_err("onex.yaml", &inline(&src, &[]))
}

#[test]
fn binding_defaults_follow_seed_000() {
    let b = binding("      name: api\n");
    assert_eq!(b.retry_policy, RetryPolicy::default());
    assert_eq!(
        (b.retry_policy.max_retries, b.retry_policy.base_delay, b.retry_policy.max_delay),
        (3, Duration::from_millis(100), Duration::from_millis(5000))
    );
    assert_eq!(b.retry_policy.backoff, Backoff::Exponential);
    assert!((b.retry_policy.jitter - 1.0).abs() < f64::EPSILON);
    assert_eq!(b.timeout, Duration::from_millis(30_000));
    assert!(b.rate_limit.is_none());
    let cb = b.circuit_breaker;
    assert!(cb.enabled);
    assert_eq!(cb.failure_threshold.get(), 5);
    assert_eq!(cb.failure_rate_threshold, None);
    assert_eq!((cb.sliding_window_size.get(), cb.minimum_calls.get()), (20, 10));
    assert_eq!(cb.wait_in_open, Duration::from_secs(30));
    assert_eq!(cb.permitted_calls_in_half_open.get(), 1);
    assert_eq!(cb.slow_call_threshold, None);
    let dlq: Vec<_> = b.dead_letter_on.causes().collect();
    assert_eq!(dlq, [DeadLetterCause::RetriesExhausted, DeadLetterCause::Permanent]);
}

#[test]
fn a_full_circuit_breaker_block_loads() {
    let b = binding(
        "      timeout_ms: 2000\n      circuit_breaker:\n        enabled: true\n        failure_threshold: 3\n        failure_rate_threshold: 50\n        sliding_window_size: 10\n        minimum_calls: 4\n        wait_in_open_ms: 5000\n        permitted_calls_in_half_open: 2\n        slow_call_threshold_ms: 1500\n",
    );
    let cb = b.circuit_breaker;
    assert_eq!(cb.failure_threshold.get(), 3);
    assert_eq!(cb.failure_rate_threshold, Some(50.0));
    assert_eq!((cb.sliding_window_size.get(), cb.minimum_calls.get()), (10, 4));
    assert_eq!(cb.wait_in_open, Duration::from_secs(5));
    assert_eq!(cb.permitted_calls_in_half_open.get(), 2);
    assert_eq!(cb.slow_call_threshold, Some(Duration::from_millis(1500)));
}

#[test]
fn error_handling_dialect_breaker_keys_are_aliases() {
    let b = binding("      circuit_breaker: {reset_timeout_ms: 7000, half_open_max_requests: 3}\n");
    assert_eq!(b.circuit_breaker.wait_in_open, Duration::from_secs(7));
    assert_eq!(b.circuit_breaker.permitted_calls_in_half_open.get(), 3);
}

#[test]
fn a_typo_in_circuit_breaker_names_the_key_it_meant() {
    let errors = binding_errors("      circuit_breaker:\n        failure_treshold: 3\n");
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    assert_eq!(e.path, "runtime.handlers[0].circuit_breaker.failure_treshold");
    assert_eq!((e.line, e.column), (10, 9));
    assert_eq!(e.hint.as_deref(), Some("did you mean `failure_threshold`?"));
    assert_eq!(e.fix.as_deref(), Some("rename `failure_treshold` to `failure_threshold`"));
}

#[test]
fn a_typo_in_a_binding_key_names_the_key_it_meant() {
    let errors = binding_errors("      rate_limit_brust: 5\n");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].hint.as_deref(), Some("did you mean `rate_limit_burst`?"));
}

#[test]
fn breaker_numbers_out_of_range_are_errors() {
    let errors = binding_errors(
        "      circuit_breaker: {failure_threshold: 0, failure_rate_threshold: 150, wait_in_open_ms: 0, permitted_calls_in_half_open: 0}\n",
    );
    let paths: Vec<&str> = errors.iter().map(|e| e.path.rsplit('.').next().unwrap_or("")).collect();
    assert_eq!(
        paths,
        ["failure_threshold", "failure_rate_threshold", "wait_in_open_ms", "permitted_calls_in_half_open"]
    );
    assert!(errors[1].message.contains("at most 100"), "{}", errors[1].message);
}

#[test]
fn minimum_calls_above_the_window_is_an_error() {
    let errors = binding_errors("      circuit_breaker: {sliding_window_size: 5, minimum_calls: 8}\n");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "runtime.handlers[0].circuit_breaker.minimum_calls");
    assert!(errors[0].message.contains("minimum_calls (8) is greater than sliding_window_size (5)"));
    assert!(errors[0].fix.is_some() && errors[0].hint.is_some());
}

#[test]
fn a_slow_call_threshold_at_or_above_the_timeout_is_a_warning() {
    let src = runtime_with(
        "  handlers:\n    - type: http\n      timeout_ms: 1000\n      circuit_breaker: {slow_call_threshold_ms: 1000}\n",
    );
    let loaded = load_ok("onex.yaml", &inline(&src, &[]));
    let warning = loaded.notes.iter().find(|n| n.severity == Severity::Warning);
    assert!(warning.is_some_and(|w| w.path.ends_with("slow_call_threshold_ms")), "{:?}", loaded.notes);
}

#[test]
fn rate_limit_burst_and_mode_load() {
    let b = binding("      rate_limit_per_second: 2.5\n      rate_limit_burst: 10\n      rate_limit_mode: reject\n");
    let r = b.rate_limit.unwrap_or_else(|| panic!("no rate limit"));
    assert_eq!((r.per_second, r.burst.get(), r.mode), (2.5, 10, RateLimitMode::Reject));
    let r = binding("      rate_limit_per_second: 2.5\n").rate_limit.unwrap_or_else(|| panic!("no rate limit"));
    assert_eq!((r.burst.get(), r.mode), (3, RateLimitMode::Wait));
}

#[test]
fn rate_limit_settings_without_a_rate_are_errors() {
    let errors = binding_errors("      rate_limit_burst: 10\n      rate_limit_mode: reject\n");
    assert_eq!(errors.len(), 2);
    assert!(errors[0].message.contains("has no effect without `rate_limit_per_second`"));
}

#[test]
fn an_unknown_rate_limit_mode_suggests_the_closest() {
    let errors = binding_errors("      rate_limit_per_second: 5\n      rate_limit_mode: rejct\n");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].hint.as_deref(), Some("did you mean `reject`?"));
}

#[test]
fn jitter_is_a_bool_or_a_factor() {
    let j = |v: &str| binding(&format!("      retry_policy: {{jitter: {v}}}\n")).retry_policy.jitter;
    assert!((j("false") - 0.0).abs() < f64::EPSILON);
    assert!((j("true") - 1.0).abs() < f64::EPSILON);
    assert!((j("0.25") - 0.25).abs() < f64::EPSILON);
    let jf = binding("      retry_policy: {jitter_factor: 0.1}\n").retry_policy.jitter;
    assert!((jf - 0.1).abs() < f64::EPSILON);
    let errors = binding_errors("      retry_policy: {jitter: 1.5}\n");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("between 0.0 and 1.0"));
    let errors = binding_errors("      retry_policy: {jitter: lots}\n");
    assert!(errors[0].message.contains("must be `true`, `false` or a number"));
}

#[test]
fn an_unknown_backoff_is_an_error_with_a_suggestion() {
    let errors = binding_errors("      retry_policy: {backoff_strategy: exponental}\n");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].hint.as_deref(), Some("did you mean `exponential`?"));
}

#[test]
fn zero_and_negative_timeouts_are_errors() {
    for t in ["0", "-5"] {
        let errors = binding_errors(&format!("      timeout_ms: {t}\n"));
        assert_eq!(errors.len(), 1, "{t}");
        assert!(errors[0].message.contains("must be at least 1"), "{}", errors[0].message);
    }
}

#[test]
fn dead_letter_on_lists_causes() {
    let b = binding("      dead_letter_on: [retries_exhausted, circuit_open]\n");
    assert!(b.dead_letter_on.applies_to(DeadLetterCause::CircuitOpen));
    assert!(!b.dead_letter_on.applies_to(DeadLetterCause::Permanent));
    assert_eq!(binding("      dead_letter_on: []\n").dead_letter_on, DeadLetterPolicy::NONE);
    let errors = binding_errors("      dead_letter_on: [retries_exhausted, circiut_open]\n");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "runtime.handlers[0].dead_letter_on[1]");
    assert_eq!(errors[0].hint.as_deref(), Some("did you mean `circuit_open`?"));
}

#[test]
fn resilience_settings_need_contract_version_0_2() {
    let src = "contract_version: \"0.1\"\nruntime:\n  name: legacy\n  event_bus: {type: inmemory, input_topic: onex.a.b.cmd.v1, output_topic: onex.a.b.evt.v1}\n  handlers:\n    - type: http\n      circuit_breaker: {failure_threshold: 2}\n      dead_letter_on: []\n";
    let errors = load_err("onex.yaml", &inline(src, &[]));
    let beta: Vec<&str> =
        errors.iter().filter(|e| e.message.contains("needs contract_version 0.2")).map(|e| e.path.as_str()).collect();
    assert_eq!(beta, ["runtime.handlers[0].circuit_breaker", "runtime.handlers[0].dead_letter_on"]);
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,300}") {
        let sources = MapSources::new().with_file("onex.yaml", src);
        let _ = load_runtime_contract(Path::new("onex.yaml"), &sources);
        let _ = validate_file(Path::new("onex.yaml"), &sources);
    }

    #[test]
    fn arbitrary_yaml_like_text_never_panics(src in "[a-z_:\\[\\]{}, \n\"'|>&*#$-]{0,200}") {
        let sources = MapSources::new().with_file("onex.yaml", src);
        let diags = validate_file(Path::new("onex.yaml"), &sources);
        let _ = render_human(&diags, &sources);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let src = String::from_utf8_lossy(&bytes).into_owned();
        let sources = MapSources::new().with_file("onex.yaml", src);
        let _ = load_runtime_contract(Path::new("onex.yaml"), &sources);
    }
}

#[test]
fn admin_observability_and_grace_have_safe_defaults() {
    let src = runtime_with("");
    let c = load_ok("onex.yaml", &inline(&src, &[])).contract;
    let rt = &c.runtime;
    assert!(rt.admin.enabled);
    assert_eq!(rt.admin.address.to_string(), "127.0.0.1", "loopback unless told otherwise");
    assert_eq!(rt.admin.port, 8080);
    assert_eq!(rt.admin.token, None);
    assert_eq!(rt.observability, ObservabilitySpec::default());
    assert_eq!(rt.shutdown_grace, Duration::from_secs(30));
}

#[test]
fn admin_observability_and_grace_are_read_and_the_token_is_redacted() {
    let src = runtime_with(
        "  admin: {address: 0.0.0.0, port: 9100, token: s3cr3t-token}\n  observability: {log_level: debug, otlp_endpoint: \"http://127.0.0.1:4318\"}\n  shutdown_grace_seconds: 5\n",
    );
    let c = load_ok("onex.yaml", &inline(&src, &[])).contract;
    let rt = &c.runtime;
    assert_eq!((rt.admin.address.to_string().as_str(), rt.admin.port), ("0.0.0.0", 9100));
    assert_eq!(rt.admin.token.as_deref(), Some("s3cr3t-token"));
    assert!(!format!("{rt:?}").contains("s3cr3t"), "Debug never shows the token");
    assert_eq!(rt.observability.log_level.as_deref(), Some("debug"));
    assert_eq!(rt.observability.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4318"));
    assert_eq!(rt.shutdown_grace, Duration::from_secs(5));
}

#[test]
fn bad_admin_and_observability_settings_are_each_reported() {
    let src = runtime_with(
        "  admin: {address: localhost, prot: 1}\n  observability: {otlp_endpoint: \"127.0.0.1:4318\"}\n  shutdown_grace_seconds: -1\n",
    );
    let errors = load_err("onex.yaml", &inline(&src, &[]));
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    for p in [
        "runtime.admin.address",
        "runtime.admin.prot",
        "runtime.observability.otlp_endpoint",
        "runtime.shutdown_grace_seconds",
    ] {
        assert!(paths.contains(&p), "{p} not in {paths:?}");
    }
}
