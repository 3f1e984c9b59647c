//! The `onex` binary, driven as a user would drive it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test helpers fail the test by panicking")]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

fn onex(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_onex"))
        .env("ONEX_ADMIN_PORT", "0")
        .args(args)
        .current_dir(repo(""))
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("onex starts");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.unwrap_or("").as_bytes()).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("onex exits")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_reports_all_three_mistakes_with_line_numbers_and_exits_1() {
    let out = onex(&["validate", "tests/fixtures/contracts/three_mistakes.yaml"], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("\nerror: ").count() + usize::from(stderr.starts_with("error: ")), 3, "{stderr}");
    for location in ["three_mistakes.yaml:6:", "three_mistakes.yaml:11:", "three_mistakes.yaml:14:"] {
        assert!(stderr.contains(location), "missing {location} in:\n{stderr}");
    }
    assert!(stderr.contains("did you mean `environment`?"), "{stderr}");
}

#[test]
fn validate_json_output_is_machine_readable() {
    let out = onex(&["validate", "--format", "json", "tests/fixtures/contracts/three_mistakes.yaml"], None);
    assert_eq!(out.status.code(), Some(1));
    let diags: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let lines: Vec<u64> = diags.as_array().expect("array").iter().filter_map(|d| d["line"].as_u64()).collect();
    assert_eq!(lines, vec![6, 11, 14]);
}

#[test]
fn validate_accepts_the_hello_example_and_its_node_contracts() {
    let out = onex(
        &[
            "validate",
            "examples/hello/runtime.yaml",
            "examples/hello/nodes/echo.yaml",
            "examples/hello/nodes/greeter.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("3 contract file(s) valid"));
}

#[test]
fn send_prints_the_response_as_json_and_exits_0() {
    let out =
        onex(&["send", "examples/hello/runtime.yaml", "--operation", "greet", "--payload", r#"{"name":"Ada"}"#], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON response");
    assert_eq!(response["payload"]["greeting"], "Hello, Ada!");
    assert_eq!(response["success"], true);
    assert_eq!(response["source_node"], "greeter");
}

#[test]
fn send_exits_1_when_a_response_is_an_error() {
    let out = onex(&["send", "examples/hello/runtime.yaml", "--operation", "local.nope"], None);
    assert_eq!(out.status.code(), Some(1));
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON response");
    assert_eq!(response["error"]["code"], "HANDLER_NOT_FOUND");
}

#[test]
fn dev_shows_every_envelope_flowing_and_its_answer() {
    let input = std::fs::read_to_string(repo("examples/hello/envelopes.txt")).expect("example input");
    let out = onex(&["dev", "examples/hello/runtime.yaml"], Some(&input));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(stdout.lines().filter(|l| l.starts_with('→')).count(), 6, "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.starts_with('←')).count(), 6, "{stdout}");
    // The permanent failure is also dead-lettered (the default `dead_letter_on`).
    assert_eq!(stdout.lines().filter(|l| l.starts_with('✗')).count(), 1, "{stdout}");
    assert!(stdout.contains(r#"{"greeting":"Hello, Ada!"}"#), "{stdout}");
    assert!(stdout.contains("HANDLER_NOT_FOUND"), "{stdout}");
    assert!(stdout.contains("HANDLER_EXECUTION (permanent): simulated bad request"), "{stdout}");
}

#[test]
fn dev_reports_bad_input_lines_and_keeps_going() {
    let out = onex(&["dev", "examples/hello/runtime.yaml"], Some("greet {oops\ngreet {\"name\": \"x\"}\n"));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("stdin line 1: the payload after `greet` is not valid JSON"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("Hello, x!"));
}

#[test]
fn run_refuses_an_invalid_contract_with_exit_1() {
    let out = onex(&["run", "tests/fixtures/contracts/three_mistakes.yaml"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("three_mistakes.yaml:6:3"));
}

#[cfg(unix)]
#[test]
fn run_stops_cleanly_on_sigterm_with_json_logs() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_onex"))
        .env("ONEX_ADMIN_PORT", "0")
        .args(["run", "examples/hello/runtime.yaml"])
        .current_dir(repo(""))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("onex starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    // Wait for the explicit "started" log line, not for time to pass.
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert_ne!(stderr.read_line(&mut line).expect("read log"), 0, "exited early: {lines:?}");
        let started = line.contains("Runtime host started.");
        lines.push(line);
        if started {
            break;
        }
    }
    let log: serde_json::Value = serde_json::from_str(lines.last().expect("a line")).expect("JSON log line");
    assert_eq!(log["runtime_id"], "hello");
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(kill.success());
    let status = child.wait().expect("onex exits");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(rest.contains("SIGTERM") && rest.contains("Runtime host stopped."), "{rest}");
}

// Needs PostgreSQL and OpenBao from scripts/services.sh (scripts/test.sh starts them).
#[test]
fn the_services_example_reads_postgres_and_calls_http() {
    let out = onex(
        &[
            "send",
            "examples/services/runtime.yaml",
            "--operation",
            "db.query",
            "--payload",
            r#"{"sql": "select $1::int + 1 as answer", "params": [41]}"#,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON response");
    assert_eq!(response["payload"]["rows"][0]["answer"], 42);

    let out = onex(
        &[
            "send",
            "examples/services/runtime.yaml",
            "--operation",
            "http.get",
            "--payload",
            r#"{"url": "v1/sys/health"}"#,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON response");
    assert_eq!(response["payload"]["status"], 200);
    assert_eq!(response["payload"]["json"]["sealed"], false);
}

#[test]
fn an_unresolvable_secret_is_reported_with_its_field_and_no_host_starts() {
    let out = onex(&["send", "tests/fixtures/contracts/wiring/unresolved.yaml", "--operation", "db.query"], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot resolve secret `env:ONEX_TEST_UNSET_DB_URL`"), "{stderr}");
    assert!(stderr.contains("field: runtime.handlers[0].config.url"), "{stderr}");
    assert!(stderr.contains("unresolved.yaml:11:9"), "{stderr}");
    assert!(!stderr.contains("Runtime host started"), "{stderr}");
}

#[test]
fn a_misspelled_handler_config_field_is_reported_before_anything_starts() {
    let out = onex(&["send", "tests/fixtures/contracts/wiring/http_typo.yaml", "--operation", "http.get"], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("base_ur"), "{stderr}");
    assert!(stderr.contains("runtime.handlers[0].config"), "{stderr}");
    assert!(stderr.contains("http_typo.yaml:11:9"), "{stderr}");
    assert!(stderr.contains("field: runtime.handlers[0].config.base_ur"), "{stderr}");
    assert!(!stderr.contains("Runtime host started"), "{stderr}");
}
