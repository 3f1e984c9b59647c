//! `onex dlq` driven as an operator would, against a running `onex run` host on
//! a real Kafka-protocol broker: tansu from `scripts/services.sh` on
//! 127.0.0.1:9092 (`ONEX_TEST_KAFKA` overrides the address). Each test uses
//! topics and a group of its own.
//!
//! Nothing sleeps to synchronise: waiting for the host is polling `onex dlq
//! list`, paced by its read idle, under a deadline.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test helpers fail the test by panicking")]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use onex_bus::kafka::{KafkaBus, KafkaConfig};
use onex_bus::{EventBus, Message};
use onex_core::{Clock, Envelope, SystemClock, TopicName, UuidV7Ids};
use serde_json::{Value, json};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

fn bootstrap() -> String {
    std::env::var("ONEX_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A Kafka contract with topics `onex.<unique tenant>.orders.{cmd,evt,dlq}.v1`,
/// hosting the hello example's echo node, in a directory removed on drop.
struct Fixture {
    dir: PathBuf,
    contract: PathBuf,
    input: TopicName,
    dlq: TopicName,
}

impl Fixture {
    fn new() -> Self {
        let tenant = format!("t{}", uuid::Uuid::now_v7().simple());
        let dir = std::env::temp_dir().join(format!("onex-dlq-{tenant}"));
        std::fs::create_dir_all(&dir).unwrap();
        let topic = |kind: &str| format!("onex.{tenant}.orders.{kind}.v1");
        let echo = repo("examples/hello/nodes/echo.yaml");
        // Short fetch waits and metadata refreshes keep tansu quick (it answers fetches only when the wait expires).
        let yaml = format!(
            r#"contract_version: "0.2"
runtime:
  name: dlq-test
  environment: dev
  event_bus:
    kind: kafka
    config:
      bootstrap_servers: "{bootstrap}"
      consumer_group: dlq-test-{tenant}
      fetch_wait_max_ms: 10
      session_timeout_ms: 6000
      commit_interval_ms: 100
      timeout_seconds: 10
      librdkafka:
        topic.metadata.refresh.interval.ms: "500"
      topics:
        input: {input}
        output: {output}
        dlq: {dlq}
  handlers:
    - type: local
  nodes:
    - slug: echo
      contract: {echo}
"#,
            bootstrap = bootstrap(),
            input = topic("cmd"),
            output = topic("evt"),
            dlq = topic("dlq"),
            echo = echo.display(),
        );
        let contract = dir.join("runtime.yaml");
        std::fs::write(&contract, yaml).unwrap();
        Self { contract, input: topic("cmd").parse().unwrap(), dlq: topic("dlq").parse().unwrap(), dir }
    }

    fn contract(&self) -> &str {
        self.contract.to_str().unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn onex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_onex"))
        .env("ONEX_ADMIN_PORT", "0")
        .args(args)
        .current_dir(repo(""))
        .env_remove("RUST_LOG")
        .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap())
        .stdin(Stdio::null())
        .output()
        .expect("onex runs")
}

/// `onex dlq list --format json` with extra arguments: the records, after checking exit 0.
fn list(contract: &str, extra: &[&str]) -> Vec<Value> {
    let out = onex(&[&["dlq", "list", contract, "--format", "json"], extra].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect()
}

/// Lists until `n` records are there; each try reads for the list's idle period.
fn list_until(contract: &str, n: usize, host: &Host) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let records = list(contract, &[]);
        if records.len() >= n {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} dead letters after 30 s; host log:\n{}",
            records.len(),
            host.log()
        );
    }
}

/// `onex run` as a child process, killed if the test fails before stopping it.
struct Host {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Host {
    fn start(contract: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_onex"))
            .env("ONEX_ADMIN_PORT", "0")
            .args(["run", contract])
            .current_dir(repo(""))
            .env_remove("RUST_LOG")
            .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("onex run starts");
        // Drain the log so the host never blocks on a full pipe; kept for failure messages.
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit status (0 when it drained).
    fn stop(mut self) -> Option<i32> {
        let kill = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill runs");
        assert!(kill.success());
        self.child.wait().expect("onex exits").code()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A producer and reader of the test's own, like another service on the bus.
struct Bus {
    rt: tokio::runtime::Runtime,
    bus: KafkaBus,
}

impl Bus {
    fn connect() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut config = KafkaConfig::new(bootstrap());
        config.fetch_wait_max = Duration::from_millis(10);
        config.timeout = Duration::from_secs(10);
        let bus = rt.block_on(KafkaBus::connect(config)).expect("the broker from scripts/services.sh answers");
        Self { rt, bus }
    }

    fn publish(&self, topic: &TopicName, key: &str, payload: Vec<u8>) {
        let message = Message::new(topic.clone(), Some(Bytes::from(key.to_owned())), Bytes::from(payload));
        self.rt.block_on(self.bus.publish(message)).unwrap();
    }

    /// Every record of `topic` as (key, payload).
    fn read(&self, topic: &TopicName) -> Vec<(String, String)> {
        let records = self.rt.block_on(self.bus.read_topic(topic, usize::MAX, Duration::from_millis(500))).unwrap();
        records.into_iter().map(|r| (text(r.key.as_deref().unwrap_or_default()), text(&r.payload))).collect()
    }
}

#[cfg(unix)]
#[test]
fn dlq_lists_filters_shows_and_replays_what_a_running_host_dead_lettered() {
    let f = Fixture::new();
    let bus = Bus::connect();
    let before = SystemClock::new().now().to_string();
    // One message that is not an envelope, one envelope whose handler fails permanently.
    let malformed = br#"{"operation": "local.echo", oops"#.to_vec();
    let failing = Envelope::command(
        &UuidV7Ids,
        &SystemClock::new(),
        "local.error",
        json!({"class": "permanent", "message": "boom"}),
    );
    let failing_id = failing.envelope_id.to_string();
    bus.publish(&f.input, "bad-key", malformed.clone());
    bus.publish(&f.input, "order-1", failing.to_json());

    let host = Host::start(f.contract());
    let records = list_until(f.contract(), 2, &host);
    assert_eq!(records.len(), 2, "{records:#?}");
    let by_code = |code: &str| records.iter().find(|r| r["error_code"] == code).unwrap_or_else(|| panic!("{code}"));
    let unparsable = by_code("ENVELOPE_VALIDATION");
    assert_eq!(unparsable["error_class"], "permanent");
    assert_eq!(unparsable["attempts"], 0);
    assert_eq!(unparsable["original_topic"], f.input.as_str());
    assert_eq!(unparsable["original_payload"], text(&malformed));
    assert!(unparsable.get("envelope_id").is_none());
    let failed = by_code("HANDLER_EXECUTION");
    assert_eq!(failed["error_class"], "permanent");
    assert_eq!(failed["attempts"], 1);
    assert_eq!(failed["envelope_id"], failing_id.as_str());
    assert_eq!(failed["reason"].as_str().map(|r| r.contains("boom")), Some(true), "{failed}");
    let at = format!("{}:{}", failed["dlq_partition"], failed["dlq_offset"]);

    // Filters, alone and combined.
    let ids =
        |extra: &[&str]| -> Vec<Value> { list(f.contract(), extra).iter().map(|r| r["envelope_id"].clone()).collect() };
    assert_eq!(ids(&["--error-code", "HANDLER_EXECUTION"]), vec![json!(failing_id)]);
    assert_eq!(ids(&["--error-class", "permanent", "--envelope-id", &failing_id]), vec![json!(failing_id)]);
    assert_eq!(ids(&["--since", &before, "--original-topic", f.input.as_str()]).len(), 2);
    assert!(ids(&["--since", "2999-01-01T00:00:00Z"]).is_empty());

    // The table for people.
    let out = onex(&["dlq", "list", f.contract()]);
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(table.starts_with("DLQ "), "{table}");
    assert!(table.contains(&format!("{at} ")) && table.contains("HANDLER_EXECUTION/permanent"), "{table}");
    assert!(table.contains("ENVELOPE_VALIDATION/permanent"), "{table}");
    assert!(text(&out.stderr).contains("2 of 2 dead letter(s)"), "{}", text(&out.stderr));

    // One record in full, with the original envelope readable as JSON.
    let out = onex(&["dlq", "show", f.contract(), &at]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown: Value = serde_json::from_slice(&out.stdout).expect("pretty JSON");
    assert_eq!(shown["key"], "order-1");
    assert_eq!(shown["original_payload_json"]["operation"], "local.error");
    assert_eq!(shown["original_payload_json"]["envelope_id"], failing_id.as_str());
    let missing = onex(&["dlq", "show", f.contract(), "--partition", "99", "--offset", "0"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("no dead letter at 99:0"), "{}", text(&missing.stderr));

    // A dry run publishes nothing.
    let out = onex(&["dlq", "replay", f.contract(), "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("dry run: 2 would be replayed, 0 skipped"), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("not a valid envelope"), "{}", text(&out.stderr));
    assert_eq!(bus.read(&f.input).len(), 2);

    // A replay publishes the original bytes with the original key; the host, still running,
    // processes them again and dead-letters both once more.
    let out = onex(&["dlq", "replay", f.contract(), "--error-code", "HANDLER_EXECUTION"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("replayed {at} → {}", f.input)), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("1 replayed, 0 skipped."), "{}", text(&out.stdout));
    let input = bus.read(&f.input);
    assert_eq!(input.len(), 3, "{input:?}");
    assert_eq!(input.iter().filter(|(k, p)| k == "order-1" && *p == text(&failing.to_json())).count(), 2);
    let again = list_until(f.contract(), 3, &host);
    assert_eq!(again.iter().filter(|r| r["envelope_id"] == failing_id.as_str()).count(), 2, "{again:#?}");

    assert_eq!(host.stop(), Some(0));
    // The DLQ topic is only read, never consumed by a group: it still holds everything.
    assert_eq!(bus.read(&f.dlq).len(), 3);
}

#[test]
fn dlq_explains_that_an_in_memory_contract_has_no_dlq_topic_to_read() {
    let out = onex(&["dlq", "list", "examples/hello/runtime.yaml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("in-memory bus") && stderr.contains("onex dev"), "{stderr}");
}

#[test]
fn dlq_reports_an_unreachable_broker_with_exit_1() {
    let f = Fixture::new();
    let yaml = std::fs::read_to_string(&f.contract).unwrap().replace("timeout_seconds: 10", "timeout_seconds: 1");
    std::fs::write(&f.contract, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_onex"))
        .env("ONEX_ADMIN_PORT", "0")
        .args(["dlq", "list", f.contract()])
        .env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no Kafka broker at 127.0.0.1:1"), "{stderr}");
}

#[test]
fn dlq_usage_errors_exit_2_before_touching_the_broker() {
    for args in [
        &["dlq", "list", "x.yaml", "--error-code", "NOPE"][..],
        &["dlq", "list", "x.yaml", "--since", "yesterday"],
        &["dlq", "show", "x.yaml"],
        &["dlq", "show", "x.yaml", "2-17"],
        &["dlq", "show", "x.yaml", "--partition", "1"],
    ] {
        let out = onex(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn validate_accepts_the_kafka_example() {
    let out = onex(&["validate", "examples/kafka/runtime.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
