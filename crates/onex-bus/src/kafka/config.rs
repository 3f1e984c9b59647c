//! Settings of the Kafka bus: `runtime.event_bus.config` of a `kind: kafka`
//! contract, then the `KAFKA_*` environment overrides (seed 004's names),
//! checked together so every problem is reported at once.
//!
//! Settings onex relies on for its guarantees are not negotiable: offsets
//! are stored by onex after each outcome (`enable.auto.offset.store=false`)
//! and the assignment strategy is cooperative-sticky. The `librdkafka` map
//! passes anything else straight to librdkafka.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

/// Contract keys of `event_bus.config` that belong to the kafka bus.
const KEYS: [&str; 22] = [
    "bootstrap_servers",
    "client_id",
    "acks",
    "enable_idempotence",
    "compression",
    "linger_ms",
    "timeout_seconds",
    "max_retry_attempts",
    "retry_backoff_base",
    "auto_offset_reset",
    "enable_auto_commit",
    "commit_interval_ms",
    "session_timeout_ms",
    "fetch_wait_max_ms",
    "max_in_flight",
    "pause_threshold_percent",
    "circuit_breaker_threshold",
    "circuit_breaker_reset_timeout",
    "statistics_interval_ms",
    "security_protocol",
    "ssl",
    "sasl",
];
/// Read separately: `librdkafka` (raw pass-through).
const RAW_KEY: &str = "librdkafka";

/// librdkafka properties onex sets itself; the pass-through map may not change them.
const RESERVED: [&str; 6] = [
    "enable.auto.offset.store",
    "partition.assignment.strategy",
    "group.id",
    "bootstrap.servers",
    "enable.partition.eof",
    "sasl.password",
];

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin<'a> {
    Contract(&'a str),
    Env(&'a str),
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Contract(key) => write!(f, "runtime.event_bus.config.{key}"),
            Self::Env(var) => write!(f, "environment variable {var}"),
        }
    }
}

/// Producer acknowledgement level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// Every in-sync replica (the default; required for idempotence).
    All,
    Leader,
    None,
}

impl Acks {
    fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Leader => "1",
            Self::None => "0",
        }
    }
}

/// Where a new consumer group starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
}

/// TLS and SASL settings, passed to librdkafka as-is. The password is never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub protocol: Option<String>,
    pub ssl_ca_location: Option<String>,
    pub ssl_certificate_location: Option<String>,
    pub ssl_key_location: Option<String>,
    pub sasl_mechanism: Option<String>,
    pub sasl_username: Option<String>,
    sasl_password: Option<String>,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security")
            .field("protocol", &self.protocol)
            .field("ssl_ca_location", &self.ssl_ca_location)
            .field("ssl_certificate_location", &self.ssl_certificate_location)
            .field("ssl_key_location", &self.ssl_key_location)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field("sasl_password", &self.sasl_password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Everything the kafka bus needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    pub client_id: String,
    /// Set by `KAFKA_GROUP`; the wiring uses it instead of the contract's consumer group.
    pub group_override: Option<String>,
    /// Set by `KAFKA_DEAD_LETTER_TOPIC`; the wiring uses it instead of the contract's DLQ topic.
    pub dead_letter_topic_override: Option<String>,
    pub acks: Acks,
    pub enable_idempotence: bool,
    /// `none`, `gzip`, `snappy` or `lz4`.
    pub compression: String,
    pub linger: Duration,
    /// How long a publish may take before it fails, and how long connecting may take.
    pub timeout: Duration,
    /// Producer retries inside librdkafka before a publish fails.
    pub max_retry_attempts: u32,
    /// Base of librdkafka's exponential retry backoff.
    pub retry_backoff_base: Duration,
    pub auto_offset_reset: OffsetReset,
    /// How often stored offsets are committed (also on revoke and shutdown).
    pub commit_interval: Duration,
    pub session_timeout: Duration,
    /// How long a fetch waits for data on the broker.
    pub fetch_wait_max: Duration,
    /// Deliveries handed out and not yet acked, per consumer, before it stops taking more.
    pub max_in_flight: usize,
    /// Partitions pause when in-flight reaches this percentage of `max_in_flight`.
    pub pause_threshold_percent: u8,
    /// Consecutive publish failures that open the producer circuit.
    pub circuit_breaker_threshold: u32,
    /// How long the producer circuit stays open before one probe publish.
    pub circuit_breaker_reset_timeout: Duration,
    /// How often librdkafka reports statistics (partition lag).
    pub statistics_interval: Duration,
    pub security: Security,
    /// Raw librdkafka properties, applied last.
    pub librdkafka: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// Defaults for everything but the bootstrap servers.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            client_id: "onex".into(),
            group_override: None,
            dead_letter_topic_override: None,
            acks: Acks::All,
            enable_idempotence: true,
            compression: "none".into(),
            linger: Duration::from_millis(1),
            timeout: Duration::from_secs(30),
            max_retry_attempts: 3,
            retry_backoff_base: Duration::from_secs(1),
            auto_offset_reset: OffsetReset::Earliest,
            commit_interval: Duration::from_secs(1),
            session_timeout: Duration::from_secs(10),
            fetch_wait_max: Duration::from_millis(100),
            max_in_flight: 100,
            pause_threshold_percent: 80,
            circuit_breaker_threshold: 5,
            circuit_breaker_reset_timeout: Duration::from_secs(30),
            statistics_interval: Duration::from_secs(5),
            security: Security::default(),
            librdkafka: BTreeMap::new(),
        }
    }

    /// Reads `event_bus.config` (minus `consumer_group` and `topics`, which the
    /// contract loader handles) and applies `KAFKA_*` overrides from `env`.
    ///
    /// # Errors
    /// Every problem found, one line each: where (contract key or variable),
    /// what is wrong, and how to fix it.
    pub fn from_contract(
        config: &Map<String, Value>,
        runtime_name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<String>> {
        let mut p = Parser { problems: Vec::new() };
        let mut c = Self::new(String::new());
        c.client_id = format!("onex-{runtime_name}");
        for key in config.keys() {
            if !KEYS.contains(&key.as_str()) && key != RAW_KEY {
                let hint = onex_core::contract::did_you_mean(key, &KEYS)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                p.problems.push(format!(
                    "runtime.event_bus.config.{key}: unknown kafka bus setting{hint}; known settings are {}, and `librdkafka` for raw properties",
                    KEYS.join(", ")
                ));
            }
        }
        let get = |key: &'static str| config.get(key).map(|v| (v, Origin::Contract(key)));
        if let Some((v, o)) = get("bootstrap_servers") {
            c.bootstrap_servers = p.servers(v, o).unwrap_or_default();
        }
        if let Some((v, o)) = get("client_id") {
            c.client_id = p.string(v, o).unwrap_or(c.client_id);
        }
        if let Some((v, o)) = get("acks") {
            c.acks = p.acks(v, o).unwrap_or(c.acks);
        }
        if let Some((v, o)) = get("enable_idempotence") {
            c.enable_idempotence = p.boolean(v, o).unwrap_or(c.enable_idempotence);
        }
        if let Some((v, o)) = get("compression") {
            if let Some(s) = p.string(v, o) {
                if ["none", "gzip", "snappy", "lz4"].contains(&s.as_str()) {
                    c.compression = s;
                } else {
                    p.problems.push(format!("{o}: unsupported compression `{s}`; use none, gzip, snappy or lz4"));
                }
            }
        }
        if let Some((v, o)) = get("linger_ms") {
            c.linger = p.millis(v, o, 0..=60_000).unwrap_or(c.linger);
        }
        if let Some((v, o)) = get("timeout_seconds") {
            c.timeout = p.seconds(v, o, 1.0..=300.0).unwrap_or(c.timeout);
        }
        if let Some((v, o)) = get("max_retry_attempts") {
            c.max_retry_attempts = p.int(v, o, 0..=10).unwrap_or(c.max_retry_attempts.into()) as u32;
        }
        if let Some((v, o)) = get("retry_backoff_base") {
            c.retry_backoff_base = p.seconds(v, o, 0.1..=60.0).unwrap_or(c.retry_backoff_base);
        }
        if let Some((v, o)) = get("auto_offset_reset") {
            c.auto_offset_reset = p.offset_reset(v, o).unwrap_or(c.auto_offset_reset);
        }
        if let Some((v, o)) = get("enable_auto_commit") {
            p.auto_commit(v, o);
        }
        if let Some((v, o)) = get("commit_interval_ms") {
            c.commit_interval = p.millis(v, o, 10..=60_000).unwrap_or(c.commit_interval);
        }
        if let Some((v, o)) = get("session_timeout_ms") {
            c.session_timeout = p.millis(v, o, 1_000..=300_000).unwrap_or(c.session_timeout);
        }
        if let Some((v, o)) = get("fetch_wait_max_ms") {
            c.fetch_wait_max = p.millis(v, o, 1..=10_000).unwrap_or(c.fetch_wait_max);
        }
        if let Some((v, o)) = get("max_in_flight") {
            c.max_in_flight = p.int(v, o, 1..=100_000).unwrap_or(100) as usize;
        }
        if let Some((v, o)) = get("pause_threshold_percent") {
            c.pause_threshold_percent = p.int(v, o, 1..=100).unwrap_or(80) as u8;
        }
        if let Some((v, o)) = get("circuit_breaker_threshold") {
            c.circuit_breaker_threshold = p.int(v, o, 1..=100).unwrap_or(5) as u32;
        }
        if let Some((v, o)) = get("circuit_breaker_reset_timeout") {
            c.circuit_breaker_reset_timeout = p.seconds(v, o, 0.01..=3600.0).unwrap_or(c.circuit_breaker_reset_timeout);
        }
        if let Some((v, o)) = get("statistics_interval_ms") {
            c.statistics_interval = p.millis(v, o, 100..=600_000).unwrap_or(c.statistics_interval);
        }
        if let Some((v, o)) = get("security_protocol") {
            c.security.protocol = p.security_protocol(v, o);
        }
        if let Some((v, _)) = get("ssl") {
            p.section(v, "ssl", &["ca_location", "certificate_location", "key_location"], |key, s| match key {
                "ca_location" => c.security.ssl_ca_location = Some(s),
                "certificate_location" => c.security.ssl_certificate_location = Some(s),
                _ => c.security.ssl_key_location = Some(s),
            });
        }
        if let Some((v, _)) = get("sasl") {
            p.section(v, "sasl", &["mechanism", "username", "password"], |key, s| match key {
                "mechanism" => c.security.sasl_mechanism = Some(s),
                "username" => c.security.sasl_username = Some(s),
                _ => c.security.sasl_password = Some(s),
            });
        }
        if let Some(v) = config.get(RAW_KEY) {
            c.librdkafka = p.raw(v);
        }

        // Environment overrides (seed 004), applied after the contract.
        let var =
            |name: &'static str| env(name).filter(|s| !s.is_empty()).map(|s| (Value::String(s), Origin::Env(name)));
        if let Some((v, o)) = var("KAFKA_BOOTSTRAP_SERVERS") {
            c.bootstrap_servers = p.servers(&v, o).unwrap_or_default();
        }
        if let Some((v, o)) = var("KAFKA_GROUP") {
            c.group_override = p.string(&v, o).filter(|g| {
                let ok = !g.chars().any(char::is_control);
                if !ok {
                    p.problems.push(format!("{o}: the group name contains control characters; use plain text"));
                }
                ok
            });
        }
        if let Some((v, o)) = var("KAFKA_TIMEOUT_SECONDS") {
            c.timeout = p.seconds(&v, o, 1.0..=300.0).unwrap_or(c.timeout);
        }
        if let Some((v, o)) = var("KAFKA_MAX_RETRY_ATTEMPTS") {
            c.max_retry_attempts = p.int(&v, o, 0..=10).unwrap_or(c.max_retry_attempts.into()) as u32;
        }
        if let Some((v, o)) = var("KAFKA_RETRY_BACKOFF_BASE") {
            c.retry_backoff_base = p.seconds(&v, o, 0.1..=60.0).unwrap_or(c.retry_backoff_base);
        }
        if let Some((v, o)) = var("KAFKA_CIRCUIT_BREAKER_THRESHOLD") {
            c.circuit_breaker_threshold = p.int(&v, o, 1..=100).unwrap_or(c.circuit_breaker_threshold.into()) as u32;
        }
        if let Some((v, o)) = var("KAFKA_CIRCUIT_BREAKER_RESET_TIMEOUT") {
            c.circuit_breaker_reset_timeout = p.seconds(&v, o, 1.0..=3600.0).unwrap_or(c.circuit_breaker_reset_timeout);
        }
        if let Some((v, o)) = var("KAFKA_CONSUMER_SLEEP_INTERVAL") {
            // The Python bus slept between empty polls; here the broker-side fetch wait plays that role.
            c.fetch_wait_max = p.seconds(&v, o, 0.01..=10.0).unwrap_or(c.fetch_wait_max);
        }
        if let Some((v, o)) = var("KAFKA_ACKS") {
            c.acks = p.acks(&v, o).unwrap_or(c.acks);
        }
        if let Some((v, o)) = var("KAFKA_ENABLE_IDEMPOTENCE") {
            c.enable_idempotence = p.boolean(&v, o).unwrap_or(c.enable_idempotence);
        }
        if let Some((v, o)) = var("KAFKA_AUTO_OFFSET_RESET") {
            c.auto_offset_reset = p.offset_reset(&v, o).unwrap_or(c.auto_offset_reset);
        }
        if let Some((v, o)) = var("KAFKA_ENABLE_AUTO_COMMIT") {
            p.auto_commit(&v, o);
        }
        if let Some((v, o)) = var("KAFKA_DEAD_LETTER_TOPIC") {
            c.dead_letter_topic_override = p.string(&v, o);
        }

        if c.bootstrap_servers.is_empty() && !p.problems.iter().any(|m| m.contains("bootstrap")) {
            p.problems.push(
                "runtime.event_bus.config.bootstrap_servers: missing; the kafka bus needs at least one broker address; \
                 add `bootstrap_servers: \"127.0.0.1:9092\"` or set KAFKA_BOOTSTRAP_SERVERS"
                    .into(),
            );
        }
        if c.enable_idempotence && c.acks != Acks::All {
            p.problems.push(format!(
                "acks `{}` with enable_idempotence: an idempotent producer needs acks `all`; set `acks: all` or `enable_idempotence: false`",
                c.acks.as_str()
            ));
        }
        if p.problems.is_empty() { Ok(c) } else { Err(p.problems) }
    }

    /// The partition count at which consumption pauses (at least 1).
    pub fn pause_at(&self) -> usize {
        (self.max_in_flight * usize::from(self.pause_threshold_percent)).div_ceil(100).max(1)
    }

    /// Properties shared by producer and consumers.
    fn common(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("bootstrap.servers", self.bootstrap_servers.clone()),
            ("client.id", self.client_id.clone()),
            ("statistics.interval.ms", self.statistics_interval.as_millis().to_string()),
            // Fail fast and visibly when no broker answers, instead of retrying silently forever.
            ("socket.connection.setup.timeout.ms", self.timeout.as_millis().to_string()),
            ("reconnect.backoff.ms", "100".into()),
            ("reconnect.backoff.max.ms", "2000".into()),
        ];
        let s = &self.security;
        let pairs = [
            ("security.protocol", &s.protocol),
            ("ssl.ca.location", &s.ssl_ca_location),
            ("ssl.certificate.location", &s.ssl_certificate_location),
            ("ssl.key.location", &s.ssl_key_location),
            ("sasl.mechanism", &s.sasl_mechanism),
            ("sasl.username", &s.sasl_username),
            ("sasl.password", &s.sasl_password),
        ];
        out.extend(pairs.into_iter().filter_map(|(k, v)| v.clone().map(|v| (k, v))));
        out
    }

    /// librdkafka properties of the producer.
    pub fn producer_properties(&self) -> Vec<(String, String)> {
        let mut out = self.common();
        out.extend([
            ("acks", self.acks.as_str().to_owned()),
            ("enable.idempotence", self.enable_idempotence.to_string()),
            ("compression.codec", self.compression.clone()),
            ("linger.ms", self.linger.as_millis().to_string()),
            ("message.timeout.ms", self.timeout.as_millis().to_string()),
            ("retry.backoff.ms", self.retry_backoff_base.as_millis().to_string()),
        ]);
        if !self.enable_idempotence {
            out.push(("message.send.max.retries", self.max_retry_attempts.to_string()));
        }
        self.finish(out)
    }

    /// librdkafka properties of a consumer in `group`.
    pub fn consumer_properties(&self, group: &str) -> Vec<(String, String)> {
        let mut out = self.common();
        out.extend([
            ("group.id", group.to_owned()),
            ("partition.assignment.strategy", "cooperative-sticky".to_owned()),
            // onex stores an offset only once the envelope's outcome is durable.
            ("enable.auto.offset.store", "false".to_owned()),
            ("enable.auto.commit", "true".to_owned()),
            ("auto.commit.interval.ms", self.commit_interval.as_millis().to_string()),
            (
                "auto.offset.reset",
                match self.auto_offset_reset {
                    OffsetReset::Earliest => "earliest",
                    OffsetReset::Latest => "latest",
                }
                .to_owned(),
            ),
            ("session.timeout.ms", self.session_timeout.as_millis().to_string()),
            ("heartbeat.interval.ms", (self.session_timeout.as_millis() / 3).max(100).to_string()),
            ("fetch.wait.max.ms", self.fetch_wait_max.as_millis().to_string()),
            // Bounded prefetch: with max_in_flight this caps a consumer's memory.
            ("queued.max.messages.kbytes", "16384".to_owned()),
            ("enable.partition.eof", "false".to_owned()),
            // Subscribing to a topic nobody has published to yet creates it where the broker allows,
            // and a topic created later is noticed within seconds, not librdkafka's default 5 minutes.
            ("allow.auto.create.topics", "true".to_owned()),
            ("topic.metadata.refresh.interval.ms", "5000".to_owned()),
        ]);
        self.finish(out)
    }

    fn finish(&self, props: Vec<(&'static str, String)>) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        out.extend(self.librdkafka.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }
}

struct Parser {
    problems: Vec<String>,
}

impl Parser {
    fn string(&mut self, v: &Value, o: Origin<'_>) -> Option<String> {
        match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::String(_) => {
                self.problems.push(format!("{o}: must not be empty"));
                None
            }
            other => {
                self.problems.push(format!("{o}: expected a string, found `{other}`"));
                None
            }
        }
    }

    fn servers(&mut self, v: &Value, o: Origin<'_>) -> Option<String> {
        let list: Vec<String> = match v {
            Value::Array(items) => items.iter().filter_map(|i| self.string(i, o)).collect(),
            other => self.string(other, o)?.split(',').map(|s| s.trim().to_owned()).collect(),
        };
        let bad: Vec<&String> = list.iter().filter(|s| !valid_host_port(s)).collect();
        if !bad.is_empty() || list.is_empty() {
            let shown: Vec<&str> = bad.iter().map(|s| s.as_str()).collect();
            self.problems.push(format!(
                "{o}: bootstrap servers must be `host:port` entries separated by commas, found `{}`; e.g. `127.0.0.1:9092`",
                shown.join(",")
            ));
            return None;
        }
        Some(list.join(","))
    }

    fn boolean(&mut self, v: &Value, o: Origin<'_>) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                _ => {
                    self.problems.push(format!("{o}: expected true or false, found `{s}`"));
                    None
                }
            },
            other => {
                self.problems.push(format!("{o}: expected true or false, found `{other}`"));
                None
            }
        }
    }

    fn number(&mut self, v: &Value, o: Origin<'_>) -> Option<f64> {
        let n = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        if n.is_none() {
            self.problems.push(format!("{o}: expected a number, found `{v}`"));
        }
        n
    }

    fn int(&mut self, v: &Value, o: Origin<'_>, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
        let n = self.number(v, o)?;
        if n.fract() != 0.0 || !(*range.start() as f64..=*range.end() as f64).contains(&n) {
            self.problems.push(format!(
                "{o}: `{v}` is out of range; use a whole number from {} to {}",
                range.start(),
                range.end()
            ));
            return None;
        }
        Some(n as i64)
    }

    fn millis(&mut self, v: &Value, o: Origin<'_>, range: std::ops::RangeInclusive<i64>) -> Option<Duration> {
        self.int(v, o, range).map(|n| Duration::from_millis(n.unsigned_abs()))
    }

    fn seconds(&mut self, v: &Value, o: Origin<'_>, range: std::ops::RangeInclusive<f64>) -> Option<Duration> {
        let n = self.number(v, o)?;
        if !range.contains(&n) {
            self.problems.push(format!(
                "{o}: `{v}` is out of range; use a number of seconds from {} to {}",
                range.start(),
                range.end()
            ));
            return None;
        }
        Some(Duration::from_secs_f64(n))
    }

    fn acks(&mut self, v: &Value, o: Origin<'_>) -> Option<Acks> {
        let s = match v {
            Value::Number(n) => n.to_string(),
            other => self.string(other, o)?,
        };
        match s.as_str() {
            "all" | "-1" => Some(Acks::All),
            "1" => Some(Acks::Leader),
            "0" => Some(Acks::None),
            _ => {
                self.problems.push(format!("{o}: unknown acks `{s}`; use all, 1 or 0"));
                None
            }
        }
    }

    fn offset_reset(&mut self, v: &Value, o: Origin<'_>) -> Option<OffsetReset> {
        match self.string(v, o)?.as_str() {
            "earliest" => Some(OffsetReset::Earliest),
            "latest" => Some(OffsetReset::Latest),
            s => {
                self.problems.push(format!("{o}: unknown auto_offset_reset `{s}`; use earliest or latest"));
                None
            }
        }
    }

    /// onex always commits, and only what is done; turning that off is refused.
    fn auto_commit(&mut self, v: &Value, o: Origin<'_>) {
        if self.boolean(v, o) == Some(false) {
            self.problems.push(format!(
                "{o}: onex commits offsets itself, and only for envelopes whose outcome is published; \
                 it cannot be turned off. Remove the setting (tune `commit_interval_ms` instead)"
            ));
        }
    }

    fn security_protocol(&mut self, v: &Value, o: Origin<'_>) -> Option<String> {
        let s = self.string(v, o)?.to_ascii_lowercase();
        if ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"].contains(&s.as_str()) {
            Some(s)
        } else {
            self.problems
                .push(format!("{o}: unknown security protocol `{s}`; use plaintext, ssl, sasl_plaintext or sasl_ssl"));
            None
        }
    }

    fn section(&mut self, v: &Value, name: &str, keys: &[&str], mut set: impl FnMut(&str, String)) {
        let Value::Object(map) = v else {
            self.problems.push(format!("runtime.event_bus.config.{name}: expected a map with {}", keys.join(", ")));
            return;
        };
        for (key, value) in map {
            let path = format!("{name}.{key}");
            if !keys.contains(&key.as_str()) {
                self.problems
                    .push(format!("runtime.event_bus.config.{path}: unknown setting; use {}", keys.join(", ")));
                continue;
            }
            if let Some(s) = self.string(value, Origin::Contract(&path)) {
                set(key, s);
            }
        }
    }

    fn raw(&mut self, v: &Value) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Value::Object(map) = v else {
            self.problems.push("runtime.event_bus.config.librdkafka: expected a map of librdkafka properties".into());
            return out;
        };
        for (key, value) in map {
            if RESERVED.contains(&key.as_str()) {
                self.problems.push(format!(
                    "runtime.event_bus.config.librdkafka.{key}: onex sets this property itself; \
                     use the matching setting of event_bus.config (docs/kafka.md)"
                ));
                continue;
            }
            let s = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    self.problems.push(format!(
                        "runtime.event_bus.config.librdkafka.{key}: expected a string, number or boolean, found `{other}`"
                    ));
                    continue;
                }
            };
            out.insert(key.clone(), s);
        }
        out
    }
}

fn valid_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && !host.contains(char::is_whitespace) && port.parse::<u16>().is_ok(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(config: Value, env: &[(&str, &str)]) -> Result<KafkaConfig, Vec<String>> {
        let Value::Object(map) = config else { panic!("a map") };
        let env: BTreeMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        KafkaConfig::from_contract(&map, "orders", &|name| env.get(name).cloned())
    }

    fn props(list: &[(String, String)]) -> BTreeMap<&str, &str> {
        list.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn defaults_are_safe_for_at_least_once() {
        let c = parse(json!({"bootstrap_servers": "127.0.0.1:9092"}), &[]).unwrap();
        assert_eq!(c.client_id, "onex-orders");
        assert_eq!((c.max_in_flight, c.pause_at()), (100, 80));
        let prod = c.producer_properties();
        let p = props(&prod);
        assert_eq!((p["acks"], p["enable.idempotence"]), ("all", "true"));
        let cons = c.consumer_properties("g");
        let q = props(&cons);
        assert_eq!(q["enable.auto.offset.store"], "false", "offsets are stored only after the outcome");
        assert_eq!(q["partition.assignment.strategy"], "cooperative-sticky");
        assert_eq!(q["auto.offset.reset"], "earliest");
        assert_eq!(q["group.id"], "g");
    }

    #[test]
    fn contract_settings_are_mapped_and_bootstrap_lists_joined() {
        let c = parse(
            json!({
                "bootstrap_servers": ["k1:9092", "k2:9093"],
                "compression": "lz4",
                "linger_ms": 5,
                "max_in_flight": 10,
                "pause_threshold_percent": 50,
                "fetch_wait_max_ms": 20,
                "librdkafka": {"socket.keepalive.enable": true, "queue.buffering.max.messages": 1000}
            }),
            &[],
        )
        .unwrap();
        assert_eq!(c.bootstrap_servers, "k1:9092,k2:9093");
        assert_eq!(c.pause_at(), 5);
        let p = c.producer_properties();
        let p = props(&p);
        assert_eq!((p["compression.codec"], p["linger.ms"]), ("lz4", "5"));
        assert_eq!(p["socket.keepalive.enable"], "true", "raw properties pass through");
        assert_eq!(props(&c.consumer_properties("g"))["fetch.wait.max.ms"], "20");
    }

    #[test]
    fn environment_overrides_win_over_the_contract() {
        let c = parse(
            json!({"bootstrap_servers": "contract:9092", "acks": "all"}),
            &[
                ("KAFKA_BOOTSTRAP_SERVERS", "env:9092"),
                ("KAFKA_GROUP", "blue"),
                ("KAFKA_TIMEOUT_SECONDS", "5"),
                ("KAFKA_MAX_RETRY_ATTEMPTS", "7"),
                ("KAFKA_RETRY_BACKOFF_BASE", "0.5"),
                ("KAFKA_CIRCUIT_BREAKER_THRESHOLD", "3"),
                ("KAFKA_CIRCUIT_BREAKER_RESET_TIMEOUT", "2.5"),
                ("KAFKA_CONSUMER_SLEEP_INTERVAL", "0.05"),
                ("KAFKA_ACKS", "1"),
                ("KAFKA_ENABLE_IDEMPOTENCE", "false"),
                ("KAFKA_AUTO_OFFSET_RESET", "latest"),
                ("KAFKA_ENABLE_AUTO_COMMIT", "true"),
                ("KAFKA_DEAD_LETTER_TOPIC", "onex.acme.orders.dlq.v2"),
            ],
        )
        .unwrap();
        assert_eq!(c.bootstrap_servers, "env:9092");
        assert_eq!(c.group_override.as_deref(), Some("blue"));
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.max_retry_attempts, 7);
        assert_eq!(c.retry_backoff_base, Duration::from_millis(500));
        assert_eq!(c.circuit_breaker_threshold, 3);
        assert_eq!(c.circuit_breaker_reset_timeout, Duration::from_millis(2500));
        assert_eq!(c.fetch_wait_max, Duration::from_millis(50));
        assert_eq!((c.acks, c.enable_idempotence), (Acks::Leader, false));
        assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
        assert_eq!(c.dead_letter_topic_override.as_deref(), Some("onex.acme.orders.dlq.v2"));
        let p = c.producer_properties();
        assert_eq!(props(&p)["message.send.max.retries"], "7");
    }

    #[test]
    fn every_problem_is_reported_with_where_and_how_to_fix() {
        let errors = parse(
            json!({
                "bootstrap_servers": "no-port",
                "compresion": "gzip",
                "max_in_flight": 0,
                "acks": "some",
                "enable_auto_commit": false,
                "librdkafka": {"enable.auto.offset.store": "true"}
            }),
            &[("KAFKA_TIMEOUT_SECONDS", "9000"), ("KAFKA_ENABLE_IDEMPOTENCE", "maybe")],
        )
        .unwrap_err();
        let all = errors.join("\n");
        for needle in [
            "runtime.event_bus.config.bootstrap_servers: bootstrap servers must be `host:port`",
            "runtime.event_bus.config.compresion: unknown kafka bus setting (did you mean `compression`?)",
            "runtime.event_bus.config.max_in_flight: `0` is out of range; use a whole number from 1 to 100000",
            "runtime.event_bus.config.acks: unknown acks `some`; use all, 1 or 0",
            "runtime.event_bus.config.enable_auto_commit: onex commits offsets itself",
            "runtime.event_bus.config.librdkafka.enable.auto.offset.store: onex sets this property itself",
            "environment variable KAFKA_TIMEOUT_SECONDS: `\"9000\"` is out of range; use a number of seconds from 1 to 300",
            "environment variable KAFKA_ENABLE_IDEMPOTENCE: expected true or false, found `maybe`",
        ] {
            assert!(all.contains(needle), "missing `{needle}` in:\n{all}");
        }
        assert_eq!(errors.len(), 8, "{all}");
    }

    #[test]
    fn missing_bootstrap_servers_and_idempotence_without_acks_all_are_refused() {
        let errors = parse(json!({"acks": "1"}), &[]).unwrap_err().join("\n");
        assert!(errors.contains("bootstrap_servers: missing"), "{errors}");
        assert!(errors.contains("an idempotent producer needs acks `all`"), "{errors}");
    }

    #[test]
    fn tls_and_sasl_settings_pass_through_and_the_password_never_prints() {
        let c = parse(
            json!({
                "bootstrap_servers": "k:9093",
                "security_protocol": "SASL_SSL",
                "ssl": {"ca_location": "/etc/ca.pem"},
                "sasl": {"mechanism": "SCRAM-SHA-512", "username": "onex", "password": "hunter2-secret"}
            }),
            &[],
        )
        .unwrap();
        let p = c.consumer_properties("g");
        let p = props(&p);
        assert_eq!(p["security.protocol"], "sasl_ssl");
        assert_eq!(p["ssl.ca.location"], "/etc/ca.pem");
        assert_eq!(
            (p["sasl.mechanism"], p["sasl.username"], p["sasl.password"]),
            ("SCRAM-SHA-512", "onex", "hunter2-secret")
        );
        assert!(!format!("{c:?}").contains("hunter2"), "Debug redacts the password");
        let bad = parse(json!({"bootstrap_servers": "k:1", "sasl": {"passwd": "x"}}), &[]).unwrap_err();
        assert!(bad[0].contains("sasl.passwd: unknown setting; use mechanism, username, password"), "{bad:?}");
    }
}
