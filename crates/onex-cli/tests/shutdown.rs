//! Seed 000's shutdown test on Kafka, with the real binary: `onex run` has 50
//! envelopes in flight when SIGTERM arrives → readiness turns 503, all 50 are
//! answered, each handler is shut down once, and it exits 0 within the grace
//! period. The broker is tansu from `scripts/services.sh` (`ONEX_TEST_KAFKA`
//! overrides the address).
//!
//! Waiting is done on the host's log lines and on the admin API, never by sleeping.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test helpers fail the test by panicking")]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use onex_bus::kafka::{KafkaBus, KafkaConfig};
use onex_bus::{EventBus, Message};
use onex_core::{Envelope, SystemClock, UuidV7Ids};
use serde_json::{Value, json};

fn bootstrap() -> String {
    std::env::var("ONEX_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// `GET path` over plain HTTP/1.0: (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// The host's JSON log lines, as they come.
struct Log {
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Log {
    /// The next line matching `f`, failing after 60 s.
    fn wait_for(&mut self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if f(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no log line for {what}; log so far:\n{:#?}", self.seen),
            }
        }
    }

    fn rest(mut self) -> Vec<Value> {
        self.seen.extend(self.lines.iter());
        self.seen
    }
}

fn message(line: &Value) -> &str {
    line["message"].as_str().or_else(|| line["fields"]["message"].as_str()).unwrap_or_default()
}

#[test]
fn sigterm_with_50_in_flight_on_kafka_answers_all_and_exits_0_within_the_grace_period() {
    let tenant = format!("t{}", uuid::Uuid::now_v7().simple());
    let dir = std::env::temp_dir().join(format!("onex-shutdown-{tenant}"));
    std::fs::create_dir_all(&dir).unwrap();
    let topic = |kind: &str| format!("onex.{tenant}.orders.{kind}.v1");
    std::fs::write(
        dir.join("sleeper.yaml"),
        "name: sleeper\ncontract_version: {major: 1, minor: 0, patch: 0}\nnode_version: \"0.1.0\"\nnode_type: EFFECT_GENERIC\n\
         handler_routing:\n  routing_strategy: operation_match\n  handlers:\n    - operation: local.sleep\n      handler_type: local\n",
    )
    .unwrap();
    let contract = dir.join("runtime.yaml");
    std::fs::write(
        &contract,
        format!(
            r#"contract_version: "0.2"
runtime:
  name: shutdown-test
  environment: dev
  shutdown_grace_seconds: 30
  event_bus:
    kind: kafka
    config:
      bootstrap_servers: "{bootstrap}"
      consumer_group: shutdown-{tenant}
      fetch_wait_max_ms: 10
      session_timeout_ms: 6000
      timeout_seconds: 10
      librdkafka:
        topic.metadata.refresh.interval.ms: "500"
      topics:
        input: {input}
        output: {output}
  handlers:
    - type: local
  nodes:
    - slug: sleeper
      contract: sleeper.yaml
      concurrency: 64
"#,
            bootstrap = bootstrap(),
            input = topic("cmd"),
            output = topic("evt"),
        ),
    )
    .unwrap();

    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_onex"))
        .args(["run", contract.to_str().unwrap()])
        .env("ONEX_ADMIN_PORT", "0")
        .env("RUST_LOG", "info,onex_runtime::host=debug")
        .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("onex run starts");
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // Every line is JSON: a line that is not would fail the test below.
            let v = serde_json::from_str(&line).unwrap_or_else(|_| json!({"message": "NOT JSON", "raw": line}));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    // 50 envelopes that each take 1.5 s, on 50 keys: all in flight at once once consumed.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut config = KafkaConfig::new(bootstrap());
    config.fetch_wait_max = Duration::from_millis(10);
    let bus = rt.block_on(KafkaBus::connect(config)).unwrap();
    let sent: Vec<Envelope> = (0..50)
        .map(|i| {
            let mut e = Envelope::command(&UuidV7Ids, &SystemClock::new(), "local.sleep", json!({"ms": 1500, "i": i}));
            e.metadata.partition_key = Some(format!("entity-{i}"));
            e
        })
        .collect();
    let batch = sent
        .iter()
        .map(|e| {
            Message::new(topic("cmd").parse().unwrap(), Some(Bytes::from(e.partition_key())), Bytes::from(e.to_json()))
        })
        .collect();
    rt.block_on(bus.publish_batch(batch)).unwrap();
    let mut log = Log { lines, seen: Vec::new() };
    let listening = log.wait_for("the admin server", |l| message(l) == "Admin server listening.");
    let admin: SocketAddr = listening["addr"].as_str().unwrap().parse().unwrap();
    // The input topic exists once the envelopes are published; the host is assigned it then.
    log.wait_for("the partition assignment", |l| message(l) == "Partitions assigned.");
    assert_eq!(get(admin, "/health/ready").0, 200);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status: Value = serde_json::from_str(&get(admin, "/api/status").1).unwrap();
        if status["in_flight"] == 50 {
            break;
        }
        assert!(Instant::now() < deadline, "never 50 in flight: {status}");
        std::thread::yield_now();
    }

    // SIGTERM: readiness turns 503 while the 50 finish.
    let signalled = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    log.wait_for("draining", |l| message(l).starts_with("Draining"));
    let (code, body) = get(admin, "/health/ready");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("draining"), "{body}");
    let exit = child.wait().unwrap();
    let took = signalled.elapsed();
    assert_eq!(exit.code(), Some(0), "log:\n{:#?}", log.rest());
    assert!(took < Duration::from_secs(30), "exited within the grace period ({took:?})");

    // All 50 answered, once each.
    let responses =
        rt.block_on(bus.read_topic(&topic("evt").parse().unwrap(), usize::MAX, Duration::from_millis(500))).unwrap();
    let mut answered = HashSet::new();
    for r in &responses {
        let e = Envelope::from_json(&r.payload).unwrap();
        assert_eq!(e.success, Some(true), "{e:?}");
        assert!(answered.insert(e.causation_id.unwrap()), "answered twice");
    }
    assert_eq!(answered, sent.iter().map(|e| e.envelope_id).collect::<HashSet<_>>());
    let lines = log.rest();
    assert!(lines.iter().all(|l| message(l) != "NOT JSON"), "every log line is JSON");
    let shutdowns = lines.iter().filter(|l| message(l) == "Shutting down handler." && l["handler"] == "local").count();
    assert_eq!(shutdowns, 1, "the local handler is shut down exactly once");
    let _ = std::fs::remove_dir_all(&dir);
}
