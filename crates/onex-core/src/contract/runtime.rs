//! The runtime contract (seed 000), versions 0.2 (current) and 0.1 (deprecated).
//!
//! Both versions decode through the same code into one model. A v0.1 field
//! that v0.2 renamed is accepted with one deprecation warning per use; in a
//! v0.2 contract the old name is an error that names the new one. A v0.1
//! contract that uses a beta-only feature (retry policies, rate limits,
//! `config_ref`, vault/consul handlers, the kafka bus) is an error asking for
//! `contract_version: "0.2"`. The lint rules of seed 000 run here too: no
//! `local` handler in prod, topics follow the chosen convention.
//!
//! Node contracts referenced by `nodes[].contract` are loaded through
//! `node.rs`; routing between nodes is checked once all are loaded.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Map;

use super::binding;
use super::decode::{Decoder, Fields, index, join};
use super::model::{
    AdminSpec, BindingSource, BusKind, ContractVersion, Environment, EventBusSpec, HandlerBinding, HandlerType,
    MemoryBusSpec, NodeKind, NodeSpec, ObservabilitySpec, RuntimeContract, RuntimeSettings, default_timeout,
};
use super::node::{self, NodeContext};
use super::yaml::{Key, Kind, Node, Pos};
use super::{Sources, parse_tree};
use crate::envelope::NodeId;
use crate::topic::{TopicConvention, TopicKind, TopicName};

/// Where users read how to move a contract to the current version.
pub const UPGRADE_DOC: &str = "docs/contracts.md#upgrading";

const TOP_KEYS: [&str; 2] = ["contract_version", "runtime"];
const RUNTIME_KEYS: [&str; 10] = [
    "name",
    "version",
    "environment",
    "topic_convention",
    "event_bus",
    "handlers",
    "nodes",
    "admin",
    "observability",
    "shutdown_grace_seconds",
];
const ADMIN_KEYS: [&str; 4] = ["enabled", "address", "port", "token"];
const OBSERVABILITY_KEYS: [&str; 2] = ["log_level", "otlp_endpoint"];
const BUS_KEYS: [&str; 5] = ["kind", "config", "type", "input_topic", "output_topic"];
const MEMORY_CONFIG_KEYS: [&str; 5] = ["consumer_group", "topics", "queue_capacity", "partitions", "history"];
const TOPICS_KEYS: [&str; 3] = ["input", "output", "dlq"];
const HANDLER_KEYS: [&str; 15] = [
    "type",
    "handler_type",
    "name",
    "enabled",
    "priority",
    "config",
    "config_ref",
    "retry_policy",
    "timeout_ms",
    "rate_limit_per_second",
    "rate_limit_burst",
    "rate_limit_mode",
    "circuit_breaker",
    "dead_letter_on",
    "timeout_seconds",
];
const NODE_KEYS: [&str; 4] = ["slug", "contract", "concurrency", "contract_path"];

const fn default_concurrency() -> NonZeroUsize {
    NonZeroUsize::MIN.saturating_add(63) // 64, seed 000 has no number; matches the dispatcher default
}

/// Whether a slug or runtime name is `[a-z0-9_-]+`.
fn is_slug(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Decodes the runtime contract `root` of `file`, loading its node contracts.
pub fn decode(root: &Node, file: &Path, sources: &dyn Sources, d: &mut Decoder<'_>) -> Option<RuntimeContract> {
    let top = d.map(root, "")?;
    let version = contract_version(&top, d)?;
    let mut r = RuntimeDecoder { version, file, dir: file.parent().unwrap_or(Path::new("")).to_path_buf(), sources };
    for (key, _) in top.entries {
        if TOP_KEYS.contains(&key.name.as_str()) {
            continue;
        }
        if RUNTIME_KEYS.contains(&key.name.as_str()) {
            d.error(
                key.pos,
                &key.name,
                format!("`{}` must be under `runtime:`", key.name),
                Some("the runtime contract keeps all its settings in the `runtime:` map".into()),
                Some(format!("indent `{}` under `runtime:`", key.name)),
            );
        } else {
            d.unknown_key(key, "", &TOP_KEYS);
        }
    }
    let rt_node = d.required(&top, "runtime", "")?;
    let rt = d.map(rt_node, "runtime")?;
    d.deny_unknown(&rt, "runtime", &RUNTIME_KEYS);
    r.runtime(&rt, d)
}

fn contract_version(top: &Fields<'_>, d: &mut Decoder<'_>) -> Option<ContractVersion> {
    let Some(node) = top.get("contract_version") else {
        return Some(ContractVersion::V0_2);
    };
    let written = match &node.kind {
        Kind::String(s) => s.trim_start_matches('v').to_owned(),
        Kind::Float(f) => f.to_string(),
        Kind::Int(i) => i.to_string(),
        Kind::Map(_) => {
            let fields = d.map(node, "contract_version")?;
            d.deny_unknown(&fields, "contract_version", &["major", "minor", "patch"]);
            let part = |d: &mut Decoder<'_>, k: &str| {
                fields.get(k).and_then(|n| d.int(n, &join("contract_version", k), 0..=i64::from(u32::MAX)))
            };
            let major = part(d, "major").unwrap_or(0);
            let minor = part(d, "minor").unwrap_or(0);
            format!("{major}.{minor}")
        }
        _ => String::new(),
    };
    let mut parts = written.split('.');
    let major_minor = (parts.next(), parts.next());
    match major_minor {
        (Some("0"), Some("2")) => Some(ContractVersion::V0_2),
        (Some("0"), Some("1")) => Some(ContractVersion::V0_1),
        _ => {
            let shown = if written.is_empty() { node.type_name().to_owned() } else { format!("`{written}`") };
            d.error(
                node.pos,
                "contract_version",
                format!("contract_version {shown} is not supported"),
                Some(format!("this onex reads runtime contract versions {}", ContractVersion::SUPPORTED.join(", "))),
                Some(format!(
                    "write `contract_version: \"0.2\"` and update the contract as described in {UPGRADE_DOC}"
                )),
            );
            None
        }
    }
}

struct RuntimeDecoder<'s> {
    version: ContractVersion,
    file: &'s Path,
    dir: PathBuf,
    sources: &'s dyn Sources,
}

/// A handler binding with where it was written, for duplicate checks.
struct PlacedBinding {
    binding: HandlerBinding,
    pos: Pos,
    path: String,
    named: bool,
}

impl RuntimeDecoder<'_> {
    fn is_v0_1(&self) -> bool {
        self.version == ContractVersion::V0_1
    }

    /// A field renamed in v0.2: a warning in v0.1, an error in v0.2.
    fn deprecated(&self, key: &Key, path: &str, replacement: &str, d: &mut Decoder<'_>) {
        let at = join(path, &key.name);
        if self.is_v0_1() {
            d.warning(
                key.pos,
                &at,
                format!("`{}` is deprecated; contract_version 0.2 uses `{replacement}`", key.name),
                Some(format!("see {UPGRADE_DOC}")),
                Some(format!("replace `{}` with `{replacement}`", key.name)),
            );
        } else {
            d.error(
                key.pos,
                &at,
                format!("`{}` was replaced by `{replacement}` in contract_version 0.2", key.name),
                Some(format!("`{}` is the contract_version 0.1 spelling; see {UPGRADE_DOC}", key.name)),
                Some(format!("replace `{}` with `{replacement}`", key.name)),
            );
        }
    }

    /// A beta-only feature: an error in a v0.1 contract.
    fn beta_only(&self, pos: Pos, path: &str, what: &str, d: &mut Decoder<'_>) -> bool {
        if self.is_v0_1() {
            d.error(
                pos,
                path,
                format!("{what} needs contract_version 0.2"),
                Some("contract_version 0.1 (MVP) contracts may not use beta features".into()),
                Some(format!(
                    "set `contract_version: \"0.2\"` at the top of the file and apply the renames in {UPGRADE_DOC}"
                )),
            );
        }
        self.is_v0_1()
    }

    fn runtime(&mut self, rt: &Fields<'_>, d: &mut Decoder<'_>) -> Option<RuntimeContract> {
        let name = d.required(rt, "name", "runtime").and_then(|n| d.non_empty_string(n, "runtime.name"));
        if let (Some(n), Some(node)) = (&name, rt.get("name")) {
            if !is_slug(n) {
                d.error(
                    node.pos,
                    "runtime.name",
                    format!("runtime name `{n}` may only contain lowercase letters, digits, `_` and `-`"),
                    None,
                    Some(format!(
                        "write `name: {}`",
                        n.to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "-")
                    )),
                );
            }
        }
        let version = rt.get("version").and_then(|n| d.string(n, "runtime.version"));
        let environment = rt.get("environment").map_or(Some(Environment::Dev), |n| {
            d.one_of(n, "runtime.environment", &["dev", "staging", "prod"]).map(|e| match e {
                "prod" => Environment::Prod,
                "staging" => Environment::Staging,
                _ => Environment::Dev,
            })
        });
        let convention = rt.get("topic_convention").map_or(Some(TopicConvention::TenantDomain), |n| {
            d.one_of(n, "runtime.topic_convention", &["tenant_domain", "onex_kind"])
                .map(|c| if c == "onex_kind" { TopicConvention::OnexKind } else { TopicConvention::TenantDomain })
        });
        let conv = convention.unwrap_or_default();
        let bus = d
            .required(rt, "event_bus", "runtime")
            .and_then(|n| self.event_bus(n, conv, name.as_deref().unwrap_or(""), d));
        let handlers = match rt.get("handlers") {
            Some(n) => self.handlers(n, environment.unwrap_or_default(), d),
            None => Vec::new(),
        };
        let nodes = match rt.get("nodes") {
            Some(n) => self.nodes(n, conv, &handlers, bus.as_ref(), d),
            None => Vec::new(),
        };
        let admin = rt.get("admin").map_or(Some(AdminSpec::default()), |n| admin(n, d));
        let observability = rt.get("observability").map_or(Some(ObservabilitySpec::default()), |n| observability(n, d));
        let shutdown_grace = rt.get("shutdown_grace_seconds").map_or(Some(Duration::from_secs(30)), |n| {
            d.int(n, "runtime.shutdown_grace_seconds", 0..=3600).map(|s| Duration::from_secs(s.unsigned_abs()))
        });
        let (name, environment, convention, bus) = (name?, environment?, convention?, bus?);
        let (admin, observability, shutdown_grace) = (admin?, observability?, shutdown_grace?);
        if d.has_errors() {
            return None;
        }
        Some(RuntimeContract {
            version: self.version,
            source: self.file.to_path_buf(),
            runtime: RuntimeSettings {
                name,
                version,
                environment,
                topic_convention: convention,
                admin,
                observability,
                shutdown_grace,
            },
            event_bus: bus,
            handlers,
            nodes,
        })
    }

    fn event_bus(
        &self,
        node: &Node,
        conv: TopicConvention,
        runtime_name: &str,
        d: &mut Decoder<'_>,
    ) -> Option<EventBusSpec> {
        let path = "runtime.event_bus";
        let bus = d.map(node, path)?;
        d.deny_unknown(&bus, path, &BUS_KEYS);
        let kind_node = match (bus.get("kind"), bus.get("type")) {
            (Some(k), Some(_)) => {
                d.error(
                    bus.key_pos("type"),
                    &join(path, "type"),
                    "both `kind` and `type` are set".into(),
                    Some("`type` is the contract_version 0.1 name of `kind`".into()),
                    Some("remove `type`".into()),
                );
                Some(k)
            }
            (Some(k), None) => Some(k),
            (None, Some(t)) => {
                if let Some((key, _)) = bus.entries.iter().find(|(k, _)| k.name == "type") {
                    self.deprecated(key, path, "kind", d);
                }
                Some(t)
            }
            (None, None) => None,
        };
        let kind = match kind_node {
            None => Some(BusKind::Memory),
            Some(n) => d
                .one_of(n, &join(path, "kind"), &["memory", "inmemory", "kafka"])
                .map(|k| if k == "kafka" { BusKind::Kafka } else { BusKind::Memory }),
        };
        if let (Some(BusKind::Kafka), Some(n)) = (kind, kind_node) {
            self.beta_only(n.pos, &join(path, "kind"), "the kafka event bus", d);
        }
        let config_path = join(path, "config");
        let config = match bus.get("config") {
            Some(n) => d.map(n, &config_path),
            None => None,
        };
        let consumer_group = config
            .and_then(|c| c.get("consumer_group"))
            .and_then(|n| d.non_empty_string(n, &join(&config_path, "consumer_group")))
            .unwrap_or_else(|| runtime_name.to_owned());

        // Topics: v0.2 `config.topics`, v0.1 `input_topic` / `output_topic`.
        let topics_path = join(&config_path, "topics");
        let topics = config.and_then(|c| c.get("topics")).and_then(|n| d.map(n, &topics_path));
        if let Some(t) = topics {
            d.deny_unknown(&t, &topics_path, &TOPICS_KEYS);
        }
        let mut input_src = topics.and_then(|t| t.get("input")).map(|n| (n, join(&topics_path, "input")));
        let mut output_src = topics.and_then(|t| t.get("output")).map(|n| (n, join(&topics_path, "output")));
        for (old, new, slot) in [
            ("input_topic", "config.topics.input", &mut input_src),
            ("output_topic", "config.topics.output", &mut output_src),
        ] {
            if let Some((key, value)) = bus.entries.iter().find(|(k, _)| k.name == old) {
                self.deprecated(key, path, new, d);
                if slot.is_none() {
                    *slot = Some((value, join(path, old)));
                }
            }
        }
        let mut input_topics = Vec::new();
        match &input_src {
            Some((n, p)) => {
                for (raw, pos, p) in d.strings(n, p).unwrap_or_default() {
                    if let Some(t) = d.topic(&raw, pos, &p, Some(conv)) {
                        input_topics.push(t);
                    }
                }
                if matches!(&n.kind, Kind::Seq(items) if items.is_empty()) {
                    d.error(
                        n.pos,
                        p,
                        "at least one input topic is required".into(),
                        None,
                        Some("list the topics this runtime consumes".into()),
                    );
                }
            }
            None => {
                d.error(
                    bus.node.pos,
                    &topics_path,
                    "missing input topic".into(),
                    Some("the runtime needs at least one topic to consume".into()),
                    Some(format!(
                        "add `config: {{topics: {{input: {}}}}}` under `runtime.event_bus`",
                        example_topic(conv, TopicKind::Cmd)
                    )),
                );
            }
        }
        let output_topic = match &output_src {
            Some((n, p)) => d.string(n, p).and_then(|raw| d.topic(&raw, n.pos, p, Some(conv))),
            None => {
                d.error(
                    bus.node.pos,
                    &topics_path,
                    "missing output topic".into(),
                    Some("results are published to the output topic unless a node names its own".into()),
                    Some(format!(
                        "add `output: {}` under `runtime.event_bus.config.topics`",
                        example_topic(conv, TopicKind::Evt)
                    )),
                );
                None
            }
        };
        let dlq_topic = match topics.and_then(|t| t.get("dlq")) {
            Some(n) => {
                let p = join(&topics_path, "dlq");
                let t = d.string(n, &p).and_then(|raw| d.topic(&raw, n.pos, &p, Some(conv)));
                if let Some(topic) = &t {
                    if topic.kind() != Some(TopicKind::Dlq) {
                        d.error(
                            n.pos,
                            &p,
                            format!("dead-letter topic `{topic}` does not have kind `dlq`"),
                            None,
                            Some(format!("use a topic like `{}`", example_topic(conv, TopicKind::Dlq))),
                        );
                    }
                }
                t
            }
            None => input_topics.first().and_then(|t| default_dlq(t, conv)),
        };

        // Backend settings.
        let mut memory = MemoryBusSpec::default();
        let mut backend_config = Map::new();
        if let Some(c) = config {
            match kind {
                Some(BusKind::Memory) => {
                    d.deny_unknown(&c, &config_path, &MEMORY_CONFIG_KEYS);
                    let nz = |d: &mut Decoder<'_>, key: &str, max: i64| {
                        c.get(key)
                            .and_then(|n| d.int(n, &join(&config_path, key), 1..=max))
                            .and_then(|v| usize::try_from(v).ok())
                            .and_then(NonZeroUsize::new)
                    };
                    if let Some(v) = nz(d, "queue_capacity", i64::from(u32::MAX)) {
                        memory.queue_capacity = v;
                    }
                    if let Some(v) = nz(d, "partitions", 1024) {
                        memory.partitions = v;
                    }
                    if let Some(v) = c
                        .get("history")
                        .and_then(|n| d.int(n, &join(&config_path, "history"), 0..=i64::from(u32::MAX)))
                        .and_then(|v| usize::try_from(v).ok())
                    {
                        memory.history = v;
                    }
                }
                Some(BusKind::Kafka) => {
                    for (key, value) in c.entries {
                        match key.name.as_str() {
                            "consumer_group" | "topics" => {}
                            "queue_capacity" | "partitions" | "history" => d.error(key.pos, &join(&config_path, &key.name), format!("`{}` only applies to `kind: memory`", key.name), Some("the kafka bus takes its partitions and buffering from the broker and librdkafka settings".into()), Some(format!("remove `{}`", key.name))),
                            _ => {
                                backend_config.insert(key.name.clone(), value.to_json());
                            }
                        }
                    }
                }
                None => {}
            }
        }
        Some(EventBusSpec {
            kind: kind?,
            input_topics,
            output_topic: output_topic?,
            dlq_topic: dlq_topic?,
            consumer_group,
            memory,
            backend_config,
        })
    }

    fn handlers(&self, node: &Node, env: Environment, d: &mut Decoder<'_>) -> Vec<HandlerBinding> {
        let path = "runtime.handlers";
        let Some(items) = d.list(node, path) else {
            return Vec::new();
        };
        let mut placed: Vec<PlacedBinding> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = index(path, i);
            let Some(b) = self.handler(item, &p, env, d) else {
                continue;
            };
            if let Some(first) = placed.iter().find(|e| e.binding.name == b.binding.name) {
                let same_type_unnamed =
                    first.binding.handler_type == b.binding.handler_type && !(first.named && b.named);
                let fix = if same_type_unnamed {
                    format!("give each `{}` binding a distinct `name:`", b.binding.handler_type.as_str())
                } else {
                    format!("rename one of the two `{}` bindings", b.binding.name)
                };
                d.error(
                    b.pos,
                    &b.path,
                    format!("handler binding `{}` is declared twice", b.binding.name),
                    Some(format!("`{}` is first declared at {}", b.binding.name, first.path)),
                    Some(fix),
                );
                continue;
            }
            placed.push(b);
        }
        placed.into_iter().map(|p| p.binding).collect()
    }

    fn handler(&self, item: &Node, p: &str, env: Environment, d: &mut Decoder<'_>) -> Option<PlacedBinding> {
        let h = d.map(item, p)?;
        d.deny_unknown(&h, p, &HANDLER_KEYS);
        let type_node = match h.get_any(&["type", "handler_type"]) {
            Some((key, n)) => {
                if h.has("type") && h.has("handler_type") {
                    d.error(
                        h.key_pos("handler_type"),
                        &join(p, "handler_type"),
                        "both `type` and `handler_type` are set".into(),
                        Some("`handler_type` is an alias of `type`".into()),
                        Some("remove one of them".into()),
                    );
                }
                Some((key, n))
            }
            None => {
                d.required(&h, "type", p);
                None
            }
        };
        let handler_type = type_node.and_then(|(key, n)| {
            let at = join(p, key);
            let raw = d.string(n, &at)?;
            let parsed = HandlerType::parse(&raw);
            if parsed.is_none() {
                let names: Vec<&str> = HandlerType::ALL.iter().map(|t| t.as_str()).collect();
                let guess = super::decode::did_you_mean(&raw, &names);
                d.error(
                    n.pos,
                    &at,
                    format!("unknown handler type `{raw}`"),
                    Some(guess.map_or_else(
                        || format!("known handler types: {}", names.join(", ")),
                        |g| format!("did you mean `{g}`? known handler types: {}", names.join(", ")),
                    )),
                    Some(format!("write one of: {}", names.join(", "))),
                );
            }
            if let Some(t @ (HandlerType::Vault | HandlerType::Consul)) = parsed {
                self.beta_only(n.pos, &at, &format!("the `{}` handler", t.as_str()), d);
            }
            if parsed == Some(HandlerType::Local) && env == Environment::Prod {
                d.error(
                    n.pos,
                    &at,
                    "the local handler is dev-only".into(),
                    Some("`environment: prod` refuses handlers meant for development and tests".into()),
                    Some("remove the `local` binding, or set `runtime.environment: dev`".into()),
                );
            }
            parsed
        });
        let name = h.get("name").and_then(|n| d.non_empty_string(n, &join(p, "name")));
        let enabled = h.get("enabled").and_then(|n| d.bool(n, &join(p, "enabled"))).unwrap_or(true);
        let priority = h
            .get("priority")
            .and_then(|n| d.int(n, &join(p, "priority"), i64::from(i32::MIN)..=i64::from(i32::MAX)))
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(0);

        // `config`, with `timeout_ms` / `retry_policy` lifted out of it (seed 000 nests them there).
        let config_path = join(p, "config");
        let config_fields = h.get("config").and_then(|n| d.map(n, &config_path));
        let mut config = Map::new();
        let mut source = BindingSource { line: item.pos.line, column: item.pos.column, ..BindingSource::default() };
        let mut nested_timeout = None;
        let mut nested_retry = None;
        if let Some(c) = config_fields {
            for (key, value) in c.entries {
                match (handler_type, key.name.as_str()) {
                    (Some(HandlerType::Local), _) => d.unknown_key(key, &config_path, &[]),
                    (_, "timeout_ms") => nested_timeout = Some(value),
                    (_, "retry_policy") => nested_retry = Some((key.pos, value)),
                    _ => {
                        source.config_keys.insert(key.name.clone(), (key.pos.line, key.pos.column));
                        config.insert(key.name.clone(), value.to_json());
                    }
                }
            }
        }
        let config_ref = h.get("config_ref").and_then(|n| {
            let at = join(p, "config_ref");
            let rel = d.non_empty_string(n, &at)?;
            if self.beta_only(n.pos, &at, "`config_ref`", d) {
                return None;
            }
            let resolved = self.dir.join(&rel);
            self.merge_config_ref(&resolved, n.pos, &at, &mut config, d);
            Some(resolved)
        });

        let retry_node = match (h.get("retry_policy"), nested_retry) {
            (Some(n), _) => {
                self.beta_only(h.key_pos("retry_policy"), &join(p, "retry_policy"), "`retry_policy`", d);
                Some((n, join(p, "retry_policy")))
            }
            (None, Some((pos, n))) => {
                self.beta_only(pos, &join(&config_path, "retry_policy"), "`retry_policy`", d);
                Some((n, join(&config_path, "retry_policy")))
            }
            (None, None) => None,
        };
        let retry_policy = retry_node.and_then(|(n, at)| binding::retry_policy(n, &at, d)).unwrap_or_default();

        let timeout_ms = match (h.get("timeout_ms"), h.get("timeout_seconds"), nested_timeout) {
            (Some(n), _, _) => d.int(n, &join(p, "timeout_ms"), 1..=i64::MAX).and_then(|v| u64::try_from(v).ok()),
            (None, Some(n), _) => d
                .int(n, &join(p, "timeout_seconds"), 1..=i64::MAX / 1000)
                .and_then(|v| u64::try_from(v).ok())
                .map(|s| s * 1000),
            (None, None, Some(n)) => {
                d.int(n, &join(&config_path, "timeout_ms"), 1..=i64::MAX).and_then(|v| u64::try_from(v).ok())
            }
            (None, None, None) => None,
        };
        if let Some((key, _)) = h.entries.iter().find(|(k, _)| k.name == "timeout_seconds") {
            self.deprecated(key, p, "timeout_ms", d);
        }
        let timeout = timeout_ms.map_or(default_timeout(), Duration::from_millis);
        for key in ["rate_limit_per_second", "rate_limit_burst", "rate_limit_mode", "circuit_breaker", "dead_letter_on"]
        {
            if h.has(key) {
                self.beta_only(h.key_pos(key), &join(p, key), &format!("`{key}`"), d);
            }
        }
        let rate_limit = if self.is_v0_1() { None } else { binding::rate_limit(&h, p, d) };
        let circuit_breaker = h
            .get("circuit_breaker")
            .filter(|_| !self.is_v0_1())
            .and_then(|n| binding::circuit_breaker(n, &join(p, "circuit_breaker"), timeout, d))
            .unwrap_or_default();
        let dead_letter_on = h
            .get("dead_letter_on")
            .filter(|_| !self.is_v0_1())
            .and_then(|n| binding::dead_letter_on(n, &join(p, "dead_letter_on"), d))
            .unwrap_or_default();
        let handler_type = handler_type?;
        Some(PlacedBinding {
            named: name.is_some(),
            binding: HandlerBinding {
                handler_type,
                name: name.unwrap_or_else(|| handler_type.as_str().to_owned()),
                enabled,
                priority,
                config,
                config_ref,
                retry_policy,
                timeout,
                rate_limit,
                circuit_breaker,
                dead_letter_on,
                source,
            },
            pos: item.pos,
            path: p.to_owned(),
        })
    }

    /// Reads the `config_ref` file and adds its keys to `config` (inline keys win).
    fn merge_config_ref(
        &self,
        resolved: &Path,
        pos: Pos,
        at: &str,
        config: &mut Map<String, serde_json::Value>,
        d: &mut Decoder<'_>,
    ) {
        let Some(tree) = self.read_referenced(resolved, pos, at, "config_ref file", d) else {
            return;
        };
        let mut rd = Decoder::new(resolved);
        if let Some(fields) = rd.map(&tree, "") {
            for (key, value) in fields.entries {
                config.entry(key.name.clone()).or_insert_with(|| value.to_json());
            }
        }
        d.extend(rd.into_diagnostics());
    }

    fn nodes(
        &self,
        node: &Node,
        conv: TopicConvention,
        bindings: &[HandlerBinding],
        bus: Option<&EventBusSpec>,
        d: &mut Decoder<'_>,
    ) -> Vec<NodeSpec> {
        let path = "runtime.nodes";
        let Some(items) = d.list(node, path) else {
            return Vec::new();
        };
        let mut specs: Vec<(NodeSpec, Pos, String)> = Vec::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let p = index(path, i);
            let Some(n) = d.map(item, &p) else {
                continue;
            };
            d.deny_unknown(&n, &p, &NODE_KEYS);
            let slug = d.required(&n, "slug", &p).and_then(|s| {
                let at = join(&p, "slug");
                let slug = d.non_empty_string(s, &at)?;
                if !is_slug(&slug) {
                    d.error(
                        s.pos,
                        &at,
                        format!("node slug `{slug}` may only contain lowercase letters, digits, `_` and `-`"),
                        None,
                        Some(format!(
                            "write `slug: {}`",
                            slug.to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "-")
                        )),
                    );
                    return None;
                }
                if let Some(first) = seen.get(&slug) {
                    d.error(
                        s.pos,
                        &at,
                        format!("node slug `{slug}` is used twice"),
                        Some(format!("first used at {first}")),
                        Some("give each node a unique slug".into()),
                    );
                    return None;
                }
                seen.insert(slug.clone(), p.clone());
                Some(slug)
            });
            let concurrency = match n.get("concurrency") {
                Some(c) => d
                    .int(c, &join(&p, "concurrency"), 1..=10_000)
                    .and_then(|v| usize::try_from(v).ok())
                    .and_then(NonZeroUsize::new),
                None => Some(default_concurrency()),
            };
            let contract_src = match (n.get("contract"), n.get("contract_path")) {
                (Some(c), other) => {
                    if other.is_some() {
                        d.error(
                            n.key_pos("contract_path"),
                            &join(&p, "contract_path"),
                            "both `contract` and `contract_path` are set".into(),
                            Some("`contract_path` is the contract_version 0.1 name of `contract`".into()),
                            Some("remove `contract_path`".into()),
                        );
                    }
                    Some((c, join(&p, "contract")))
                }
                (None, Some(c)) => {
                    if let Some((key, _)) = n.entries.iter().find(|(k, _)| k.name == "contract_path") {
                        self.deprecated(key, &p, "contract", d);
                    }
                    Some((c, join(&p, "contract_path")))
                }
                (None, None) => None,
            };
            let ctx = NodeContext { convention: Some(conv), bindings: Some(bindings), runtime_file: Some(self.file) };
            let default_subscribe = bus.map(|b| b.input_topics.clone()).unwrap_or_default();
            let default_publish = bus.map(|b| b.output_topic.clone());
            let (contract_file, decoded) = match contract_src {
                None => (None, Some(node::DecodedNode::native())),
                Some((c, at)) => match d.non_empty_string(c, &at) {
                    None => (None, None),
                    Some(rel) => {
                        let resolved = self.dir.join(&rel);
                        (Some(resolved.clone()), self.load_node(&resolved, c.pos, &at, &ctx, d))
                    }
                },
            };
            let (Some(slug), Some(concurrency), Some(decoded)) = (slug, concurrency, decoded) else {
                continue;
            };
            let subscribe_topics = if decoded.subscribe.is_empty() { default_subscribe } else { decoded.subscribe };
            let Some(publish_topic) = decoded.publish.or(default_publish) else {
                continue;
            };
            specs.push((
                NodeSpec {
                    slug: NodeId::new(slug),
                    contract_file,
                    concurrency,
                    subscribe_topics,
                    publish_topic,
                    kind: decoded.kind,
                    description: decoded.description,
                },
                item.pos,
                p,
            ));
        }
        check_ambiguous_routing(&specs, d);
        specs.into_iter().map(|(s, _, _)| s).collect()
    }

    fn load_node(
        &self,
        resolved: &Path,
        pos: Pos,
        at: &str,
        ctx: &NodeContext<'_>,
        d: &mut Decoder<'_>,
    ) -> Option<node::DecodedNode> {
        let tree = self.read_referenced(resolved, pos, at, "node contract", d)?;
        let mut nd = Decoder::new(resolved);
        let decoded = node::decode(&tree, ctx, &mut nd);
        d.extend(nd.into_diagnostics());
        decoded
    }

    /// Reads and parses a file the runtime contract refers to (`what`: "node contract",
    /// "config_ref file"); a missing or malformed file becomes diagnostics at `pos`.
    fn read_referenced(&self, resolved: &Path, pos: Pos, at: &str, what: &str, d: &mut Decoder<'_>) -> Option<Node> {
        let text = match self.sources.read(resolved) {
            Ok(t) => t,
            Err(e) => {
                d.error(
                    pos,
                    at,
                    format!("{what} `{}` cannot be read: {e}", resolved.display()),
                    Some(format!("paths are relative to the runtime contract's directory `{}`", self.dir.display())),
                    Some(format!("create the {what}, or correct the path")),
                );
                return None;
            }
        };
        let (tree, diags) = parse_tree(&text, resolved, self.sources);
        d.extend(diags);
        tree
    }
}

/// Two nodes on one topic must not claim the same operation: routing would be a coin toss.
fn check_ambiguous_routing(specs: &[(NodeSpec, Pos, String)], d: &mut Decoder<'_>) {
    let mut owners: HashMap<(&str, &str), &str> = HashMap::new();
    for (spec, pos, path) in specs {
        let ops: Vec<&str> = match &spec.kind {
            NodeKind::Effect { routes } => routes.iter().map(|r| r.operation.as_str()).collect(),
            NodeKind::Compute { operations, .. } => operations.iter().map(|o| o.as_str()).collect(),
            NodeKind::NeedsWorker { .. } | NodeKind::Native => Vec::new(),
        };
        for topic in &spec.subscribe_topics {
            for op in &ops {
                match owners.get(&(topic.as_str(), *op)) {
                    Some(other) if *other != spec.slug.as_str() => d.error(
                        *pos,
                        path,
                        format!("nodes `{other}` and `{}` both handle operation `{op}` on topic `{topic}`", spec.slug),
                        Some("an envelope must route to exactly one node".into()),
                        Some(format!(
                            "give one of the nodes its own subscribe topic, or remove `{op}` from one of them"
                        )),
                    ),
                    _ => {
                        owners.insert((topic.as_str(), op), spec.slug.as_str());
                    }
                }
            }
        }
    }
}

/// The dead-letter topic next to `input`: its direction (or kind) replaced by `dlq`.
fn default_dlq(input: &TopicName, conv: TopicConvention) -> Option<TopicName> {
    let mut parts: Vec<&str> = input.as_str().split('.').collect();
    let slot = match conv {
        TopicConvention::TenantDomain => 3,
        TopicConvention::OnexKind => 1,
    };
    *parts.get_mut(slot)? = "dlq";
    TopicName::parse(&parts.join("."), conv).ok()
}

fn example_topic(conv: TopicConvention, kind: TopicKind) -> String {
    match conv {
        TopicConvention::TenantDomain => format!("onex.acme.orders.{}.v1", kind.as_str()),
        TopicConvention::OnexKind => format!("onex.{}.acme-orders.order-placed.v1", kind.as_str()),
    }
}

/// `runtime.admin`.
fn admin(node: &Node, d: &mut Decoder<'_>) -> Option<AdminSpec> {
    let path = "runtime.admin";
    let m = d.map(node, path)?;
    d.deny_unknown(&m, path, &ADMIN_KEYS);
    let mut spec = AdminSpec::default();
    if let Some(n) = m.get("enabled") {
        spec.enabled = d.bool(n, "runtime.admin.enabled")?;
    }
    if let Some(n) = m.get("address") {
        let raw = d.string(n, "runtime.admin.address")?;
        match raw.parse::<std::net::IpAddr>() {
            Ok(ip) => spec.address = ip,
            Err(_) => {
                d.error(
                    n.pos,
                    "runtime.admin.address",
                    format!("`{raw}` is not an IP address"),
                    Some("the admin server binds to one local address; host names are not resolved".into()),
                    Some("write `127.0.0.1` (this machine only) or `0.0.0.0` (every interface)".into()),
                );
                return None;
            }
        }
    }
    if let Some(n) = m.get("port") {
        spec.port = u16::try_from(d.int(n, "runtime.admin.port", 0..=65535)?).ok()?;
    }
    if let Some(n) = m.get("token") {
        spec.token = Some(d.non_empty_string(n, "runtime.admin.token")?);
    }
    Some(spec)
}

/// `runtime.observability`.
fn observability(node: &Node, d: &mut Decoder<'_>) -> Option<ObservabilitySpec> {
    let path = "runtime.observability";
    let m = d.map(node, path)?;
    d.deny_unknown(&m, path, &OBSERVABILITY_KEYS);
    let mut spec = ObservabilitySpec::default();
    if let Some(n) = m.get("log_level") {
        spec.log_level = Some(d.non_empty_string(n, "runtime.observability.log_level")?);
    }
    if let Some(n) = m.get("otlp_endpoint") {
        let url = d.non_empty_string(n, "runtime.observability.otlp_endpoint")?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            d.error(
                n.pos,
                "runtime.observability.otlp_endpoint",
                format!("`{url}` is not an http(s) URL"),
                Some("traces are exported with OTLP over HTTP".into()),
                Some("write e.g. `http://127.0.0.1:4318`".into()),
            );
            return None;
        }
        spec.otlp_endpoint = Some(url);
    }
    Some(spec)
}
