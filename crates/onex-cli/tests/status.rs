//! `onex status` against a real `onex run`: the hello example on the in-memory
//! bus, its admin server on a free port (found in the JSON log, not by
//! sleeping), with a bearer token so the token handling is exercised too.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test helpers fail the test by panicking")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "status-test-token";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

fn message(line: &Value) -> &str {
    line["message"].as_str().or_else(|| line["fields"]["message"].as_str()).unwrap_or_default()
}

/// `onex status ARGS`, with `ONEX_ADMIN_TOKEN` set to `token` (or unset).
fn status(args: &[&str], token: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_onex"));
    cmd.arg("status").args(args).env_remove("ONEX_ADMIN_TOKEN").env_remove("ONEX_ADMIN_URL").env_remove("RUST_LOG");
    if let Some(t) = token {
        cmd.env("ONEX_ADMIN_TOKEN", t);
    }
    cmd.output().expect("onex status runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `GET path` over plain HTTP/1.0: the status code.
fn get_code(addr: SocketAddr, path: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

struct Run {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Run {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_onex"))
            .args(["run", "examples/hello/runtime.yaml"])
            .current_dir(repo(""))
            .env("ONEX_ADMIN_PORT", "0")
            .env("ONEX_ADMIN_TOKEN", TOKEN)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("onex run starts");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line).unwrap_or_else(|_| serde_json::json!({"message": line}));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The admin address from the "Admin server listening…" log line.
    fn admin_addr(&self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| panic!("no admin address logged:\n{seen:#?}"));
            if message(&line).starts_with("Admin server listening") {
                return line["addr"].as_str().or_else(|| line["fields"]["addr"].as_str()).unwrap().parse().unwrap();
            }
            seen.push(line);
        }
    }
}

#[test]
fn status_prints_a_ready_hosts_summary_and_json_and_explains_a_missing_token() {
    let mut run = Run::start();
    let addr = run.admin_addr();
    // Ready once it consumes: /health/ready (public) turns 200 right after the log line.
    let deadline = Instant::now() + Duration::from_secs(30);
    while get_code(addr, "/health/ready") != 200 {
        assert!(Instant::now() < deadline, "onex run never became ready");
        std::thread::yield_now();
    }
    let url = format!("http://{addr}");

    // Human summary, token from the environment.
    let out = status(&["--url", &url], Some(TOKEN));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}", text(&out.stderr));
    for expected in [
        "phase      ready",
        "ready      yes",
        "envelopes  received 0 · succeeded 0 · failed 0 · dead-lettered 0 · publish errors 0",
        "in flight  0",
        "Nodes",
        "echo",
        "greeter",
        "local.echo",
        "Handlers",
        "local",
        "healthy",
        "Bus: ready",
        "Dead letters: none recent",
    ] {
        assert!(stdout.contains(expected), "missing `{expected}` in:\n{stdout}");
    }
    assert!(!stdout.contains("Not ready"), "{stdout}");

    // JSON, token from --token, URL without a scheme.
    let out = status(&["--url", &addr.to_string(), "--token", TOKEN, "--format", "json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document on stdout");
    assert_eq!(doc["ready"], true);
    assert_eq!(doc["phase"], "ready");
    assert_eq!(doc["not_ready_reasons"], serde_json::json!([]));
    let nodes: Vec<&str> = doc["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(nodes, ["echo", "greeter"]);
    assert!(doc["handlers"].as_array().unwrap().iter().any(|h| h["name"] == "local" && h["healthy"] == true));
    assert!(!text(&out.stdout).contains(TOKEN), "the token is never printed");

    // No token, then a wrong one: usage errors (exit 2) that say what to do.
    let out = status(&["--url", &url], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the admin API at") && stderr.contains("needs a token: --token or ONEX_ADMIN_TOKEN"),
        "{stderr}"
    );
    let out = status(&["--url", &url, "--token", "wrong"], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("rejected the token"), "{stderr}");

    // SIGTERM: a clean exit.
    assert!(Command::new("kill").args(["-TERM", &run.child.id().to_string()]).status().unwrap().success());
    assert_eq!(run.child.wait().unwrap().code(), Some(0));
}

#[test]
fn status_says_when_nothing_listens_and_rejects_bad_arguments() {
    // A port that was free a moment ago: connection refused.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = status(&["--url", &format!("http://127.0.0.1:{port}")], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("no onex admin server at http://127.0.0.1:{port}/")), "{stderr}");
    assert!(stderr.contains("is `onex run` running, and is the port right?"), "{stderr}");

    let out = status(&["--url", "ftp://127.0.0.1/"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = status(&["--format", "yaml"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
