//! `onex status`: a running host's status, read from its admin server's
//! `/api/status` (and, when it is not ready, the public `/health/ready` for the
//! reasons), printed as a terminal summary or as JSON.
//!
//! Exit codes: 0 ready; 1 not ready, or no admin server answered; 2 usage
//! errors (a bad URL, a missing or rejected token).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use serde_json::Value;

use crate::ReportFormat;

/// Dead letters listed in the human summary (the API keeps the latest 20).
const DEAD_LETTERS_SHOWN: usize = 5;
/// Longest free text (reasons, error messages, details) printed per entry.
const TEXT_MAX: usize = 160;
/// `/api/status` asks every handler for its health (at most 2 s each, in parallel).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Base URL of the admin server (`runtime.admin`: address and port).
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "ONEX_ADMIN_URL")]
    pub url: String,
    /// Bearer token, when the admin server has one (`runtime.admin.token`).
    #[arg(long, env = "ONEX_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// `human`: a summary; `json`: the `/api/status` document plus `not_ready_reasons`.
    #[arg(long, value_enum, default_value = "human")]
    pub format: ReportFormat,
}

/// Why `onex status` could not tell.
#[derive(Debug)]
enum Failure {
    /// The command line is wrong (exit 2).
    Usage(String),
    /// Nothing usable answered (exit 1).
    NoAnswer(String),
}

pub async fn run(args: &StatusArgs) -> ExitCode {
    match status(args).await {
        Ok(ready) => {
            if ready {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::NoAnswer(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the status; `Ok(ready)`.
async fn status(args: &StatusArgs) -> Result<bool, Failure> {
    let base = base_url(&args.url)?;
    let client = onex_handlers::http::client_builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| Failure::NoAnswer(format!("cannot build an HTTP client: {e}")))?;
    let token = args.token.as_deref().filter(|t| !t.is_empty());
    let (code, body) = get(&client, &base, "api/status", token).await?;
    match code {
        200 => {}
        401 if token.is_none() => {
            return Err(Failure::Usage(format!(
                "the admin API at {base} needs a token: --token or ONEX_ADMIN_TOKEN (the value of runtime.admin.token)"
            )));
        }
        401 => {
            return Err(Failure::Usage(format!(
                "the admin API at {base} rejected the token: check --token or ONEX_ADMIN_TOKEN against runtime.admin.token"
            )));
        }
        404 => {
            return Err(Failure::NoAnswer(format!(
                "{base}api/status answered 404: this is not an onex admin server; check --url (runtime.admin address and port)"
            )));
        }
        _ => {
            return Err(Failure::NoAnswer(format!(
                "{base}api/status answered {code}: {}",
                clean(body.trim(), TEXT_MAX)
            )));
        }
    }
    let mut document: Value = serde_json::from_str(&body).map_err(|e| {
        Failure::NoAnswer(format!("{base}api/status did not answer with JSON ({e}); is --url an onex admin server?"))
    })?;
    let parsed: Status = serde_json::from_value(document.clone()).map_err(|e| {
        Failure::NoAnswer(format!(
            "{base}api/status answered JSON this onex cannot read ({e}); is the server another onex version?"
        ))
    })?;
    let reasons = if parsed.ready { Vec::new() } else { not_ready_reasons(&client, &base, &parsed).await };
    match args.format {
        ReportFormat::Json => {
            if let Some(object) = document.as_object_mut() {
                object.insert("not_ready_reasons".into(), Value::from(reasons));
            }
            println!("{document}");
        }
        ReportFormat::Human => print!("{}", render(&parsed, &reasons)),
    }
    Ok(parsed.ready)
}

/// The admin base URL, ending in `/`. A bare `host:port` means http.
fn base_url(raw: &str) -> Result<reqwest::Url, Failure> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") { raw.to_owned() } else { format!("http://{raw}") };
    let mut url = reqwest::Url::parse(&with_scheme)
        .map_err(|e| Failure::Usage(format!("--url `{raw}` is not a URL ({e}); use e.g. http://127.0.0.1:8080")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Failure::Usage(format!("--url `{raw}` must be http:// or https://, e.g. http://127.0.0.1:8080")));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

async fn get(
    client: &reqwest::Client,
    base: &reqwest::Url,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, String), Failure> {
    let url = base.join(path).map_err(|e| Failure::Usage(format!("--url {base}: {e}")))?;
    let mut request = client.get(url.clone()).header("accept", "application/json");
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.map_err(|e| {
        if e.is_connect() {
            Failure::NoAnswer(format!(
                "no onex admin server at {base} ({}); is `onex run` running, and is the port right? \
                 (--url, default http://127.0.0.1:8080; the log line \"Admin server listening.\" has the address)",
                root_cause(&e)
            ))
        } else if e.is_timeout() {
            Failure::NoAnswer(format!("{url} did not answer within {} s", REQUEST_TIMEOUT.as_secs()))
        } else {
            Failure::NoAnswer(format!("cannot read {url}: {}", root_cause(&e)))
        }
    })?;
    let code = response.status().as_u16();
    let body =
        response.text().await.map_err(|e| Failure::NoAnswer(format!("cannot read {url}: {}", root_cause(&e))))?;
    Ok((code, body))
}

/// The innermost error message ("Connection refused (os error 111)"), which says more than reqwest's outer one.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}

/// `/health/ready`'s reasons; computed from the status itself when that endpoint does not say.
async fn not_ready_reasons(client: &reqwest::Client, base: &reqwest::Url, status: &Status) -> Vec<String> {
    let from_probe = match get(client, base, "health/ready", None).await {
        Ok((_, body)) => serde_json::from_str::<Value>(&body).ok().and_then(|v| {
            v["reasons"].as_array().map(|r| r.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect::<Vec<_>>())
        }),
        Err(_) => None,
    };
    match from_probe {
        Some(reasons) if !reasons.is_empty() => reasons,
        _ => reasons_from(status),
    }
}

/// The same reasons `/health/ready` gives, from a status document.
fn reasons_from(s: &Status) -> Vec<String> {
    let mut reasons = Vec::new();
    match s.phase.as_str() {
        "ready" => {}
        "starting" => reasons.push("starting: not consuming yet".to_owned()),
        "draining" => reasons.push(format!("draining: shutting down, {} envelope(s) in flight", s.in_flight)),
        other => reasons.push(other.to_owned()),
    }
    if !s.bus.ready {
        reasons.push(format!("bus: {}", s.bus.detail));
    }
    for h in s.handlers.iter().filter(|h| !h.healthy) {
        reasons.push(format!("handler `{}` ({}): {}", h.name, h.handler_type, h.detail));
    }
    if reasons.is_empty() {
        reasons.push("the host was not ready when asked, and is ready now".to_owned());
    }
    reasons
}

// ---- The status document (the fields this command prints) ------------------------------------

#[derive(Debug, Deserialize)]
struct Status {
    runtime_id: String,
    version: String,
    phase: String,
    ready: bool,
    uptime_seconds: f64,
    stats: Stats,
    in_flight: u64,
    #[serde(default)]
    oldest_in_flight: Vec<InFlight>,
    bus: Bus,
    #[serde(default)]
    nodes: Vec<NodeStatus>,
    #[serde(default)]
    handlers: Vec<HandlerStatus>,
    #[serde(default)]
    dead_letters: Vec<DeadLetter>,
}

#[derive(Debug, Deserialize)]
struct Stats {
    received: u64,
    succeeded: u64,
    failed: u64,
    dead_lettered: u64,
    publish_errors: u64,
}

#[derive(Debug, Deserialize)]
struct InFlight {
    envelope_id: String,
    node: String,
    seconds: f64,
}

#[derive(Debug, Deserialize)]
struct Bus {
    ready: bool,
    detail: String,
    #[serde(default)]
    partitions: Vec<Partition>,
}

#[derive(Debug, Deserialize)]
struct Partition {
    topic: String,
    partition: i64,
    lag: i64,
    in_flight: u64,
    paused: bool,
    committed: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct NodeStatus {
    id: String,
    #[serde(default)]
    operations: Vec<String>,
    concurrency: u64,
    counts: NodeCounts,
}

#[derive(Debug, Deserialize)]
struct NodeCounts {
    received: u64,
    succeeded: u64,
    failed: u64,
    dead_lettered: u64,
}

#[derive(Debug, Deserialize)]
struct HandlerStatus {
    name: String,
    handler_type: String,
    healthy: bool,
    detail: String,
    breaker: Option<String>,
    calls: Option<Calls>,
}

#[derive(Debug, Deserialize)]
struct Calls {
    calls: u64,
    errors: u64,
    p50_ms: f64,
    p99_ms: f64,
    last_error: Option<LastError>,
}

#[derive(Debug, Deserialize)]
struct LastError {
    code: String,
    message: String,
}

#[derive(Debug, Deserialize)]
struct DeadLetter {
    envelope_id: Option<String>,
    original_topic: String,
    partition: u64,
    offset: u64,
    code: String,
    reason: String,
    at: String,
}

// ---- The human summary -----------------------------------------------------------------------

fn render(s: &Status, reasons: &[String]) -> String {
    let mut out = String::new();
    let readiness = if s.ready { "yes".to_owned() } else { "NO (see \"Not ready\" below)".to_owned() };
    let oldest = s
        .oldest_in_flight
        .first()
        .map(|f| {
            format!(" (oldest {} in node {}, envelope {})", ms(f.seconds * 1000.0), clean(&f.node, 60), f.envelope_id)
        })
        .unwrap_or_default();
    let st = &s.stats;
    let _ = writeln!(out, "runtime    {} (onex {})", clean(&s.runtime_id, 80), clean(&s.version, 20));
    let _ = writeln!(out, "phase      {}", clean(&s.phase, 20));
    let _ = writeln!(out, "ready      {readiness}");
    let _ = writeln!(out, "uptime     {}", duration(s.uptime_seconds));
    let _ = writeln!(
        out,
        "envelopes  received {} · succeeded {} · failed {} · dead-lettered {} · publish errors {}",
        count(st.received),
        count(st.succeeded),
        count(st.failed),
        count(st.dead_lettered),
        count(st.publish_errors)
    );
    let _ = writeln!(out, "in flight  {}{oldest}", count(s.in_flight));

    let _ = writeln!(out, "\nNodes");
    let rows = s
        .nodes
        .iter()
        .map(|n| {
            vec![
                clean(&n.id, 40),
                count(n.counts.received),
                count(n.counts.succeeded),
                count(n.counts.failed),
                count(n.counts.dead_lettered),
                n.concurrency.to_string(),
                clean(&n.operations.join(", "), TEXT_MAX),
            ]
        })
        .collect();
    out.push_str(&table(
        &["NODE", ">RECEIVED", ">SUCCEEDED", ">FAILED", ">DEAD-LETTERED", ">CONCURRENCY", "OPERATIONS"],
        rows,
        "no nodes",
    ));

    let _ = writeln!(out, "\nHandlers");
    let rows = s
        .handlers
        .iter()
        .map(|h| {
            // The detail of an unhealthy handler is among the "Not ready" reasons below.
            let health = if h.healthy { "healthy" } else { "UNHEALTHY" }.to_owned();
            let breaker = match h.breaker.as_deref() {
                Some("half_open") => "half-open".to_owned(),
                Some("open") => "OPEN".to_owned(),
                Some(other) => clean(other, 20),
                None => "-".to_owned(),
            };
            let (calls, errors, p50, p99, last) = match &h.calls {
                Some(c) => (
                    count(c.calls),
                    count(c.errors),
                    if c.calls > 0 { ms(c.p50_ms) } else { "-".to_owned() },
                    if c.calls > 0 { ms(c.p99_ms) } else { "-".to_owned() },
                    c.last_error
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), |e| clean(&format!("{}: {}", e.code, e.message), TEXT_MAX)),
                ),
                None => ("-".into(), "-".into(), "-".into(), "-".into(), "-".into()),
            };
            vec![clean(&h.name, 40), clean(&h.handler_type, 20), health, breaker, calls, errors, p50, p99, last]
        })
        .collect();
    out.push_str(&table(
        &["HANDLER", "TYPE", "HEALTH", "BREAKER", ">CALLS", ">ERRORS", ">P50", ">P99", "LAST ERROR"],
        rows,
        "no handlers",
    ));

    let _ = writeln!(
        out,
        "\nBus: {} ({})",
        if s.bus.ready { "ready" } else { "NOT READY" },
        clean(&s.bus.detail, TEXT_MAX)
    );
    let rows = s
        .bus
        .partitions
        .iter()
        .map(|p| {
            vec![
                clean(&p.topic, 120),
                p.partition.to_string(),
                signed(p.lag),
                count(p.in_flight),
                p.committed.map_or_else(|| "-".to_owned(), signed),
                if p.paused { "paused".to_owned() } else { "fetching".to_owned() },
            ]
        })
        .collect();
    out.push_str(&table(
        &["TOPIC", ">PARTITION", ">LAG", ">IN FLIGHT", ">COMMITTED", "FETCH"],
        rows,
        "no partitions reported (the in-memory bus has none)",
    ));

    let shown = s.dead_letters.len().min(DEAD_LETTERS_SHOWN);
    if shown == 0 {
        let _ = writeln!(out, "\nDead letters: none recent");
    } else {
        let _ = writeln!(out, "\nDead letters (latest {shown} of {} kept, newest first)", s.dead_letters.len());
        let rows = s
            .dead_letters
            .iter()
            .take(shown)
            .map(|d| {
                vec![
                    clean(&d.at, 40),
                    d.envelope_id.as_deref().map_or_else(|| "-".to_owned(), |id| clean(id, 40)),
                    format!("{}[{}]@{}", clean(&d.original_topic, 120), d.partition, d.offset),
                    clean(&d.code, 40),
                    clean(&d.reason, TEXT_MAX),
                ]
            })
            .collect();
        out.push_str(&table(&["AT", "ENVELOPE", "FROM", "CODE", "REASON"], rows, ""));
    }

    if !reasons.is_empty() {
        let _ = writeln!(out, "\nNot ready:");
        for r in reasons {
            let _ = writeln!(out, "  - {}", clean(r, 2 * TEXT_MAX));
        }
    }
    out
}

/// Columns padded to their widest cell, two spaces apart, indented by two. A header
/// starting with `>` is right-aligned (numbers).
fn table(headers: &[&str], rows: Vec<Vec<String>>, empty: &str) -> String {
    if rows.is_empty() {
        return format!("  {empty}\n");
    }
    let right: Vec<bool> = headers.iter().map(|h| h.starts_with('>')).collect();
    let headers: Vec<String> = headers.iter().map(|h| h.trim_start_matches('>').to_owned()).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&headers).chain(&rows) {
        let mut line = String::from(" ");
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            let pad = width.saturating_sub(cell.chars().count());
            line.push(' ');
            if right.get(i).copied().unwrap_or(false) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if i != last {
                    line.push_str(&" ".repeat(pad));
                }
            }
            if i != last {
                line.push(' ');
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Text from the API, safe for a terminal: control characters (escape sequences,
/// newlines) are shown escaped, and it is cut at `max` characters.
fn clean(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `1284311` → `1,284,311`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

fn signed(n: i64) -> String {
    if n < 0 { format!("-{}", count(n.unsigned_abs())) } else { count(n.unsigned_abs()) }
}

fn ms(value: f64) -> String {
    if !value.is_finite() {
        "-".to_owned()
    } else if value < 10.0 {
        format!("{value:.2} ms")
    } else if value < 10_000.0 {
        format!("{value:.0} ms")
    } else {
        format!("{:.1} s", value / 1000.0)
    }
}

fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "-".to_owned();
    }
    // Whole seconds of a finite, non-negative f64: the cast saturates, it cannot wrap.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let s = seconds as u64;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m {sec}s")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else {
        format!("{seconds:.1}s")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use serde_json::json;

    use super::*;

    fn sample(ready: bool) -> Status {
        serde_json::from_value(json!({
            "runtime_id": "hello-1", "version": "0.1.0", "phase": if ready { "ready" } else { "draining" },
            "ready": ready, "uptime_seconds": 3725.4,
            "stats": {"received": 12, "succeeded": 9, "failed": 3, "dead_lettered": 1, "publish_errors": 0},
            "in_flight": 2,
            "oldest_in_flight": [{"envelope_id": "0193-a", "node": "echo", "seconds": 1.25}],
            "bus": {"ready": true, "detail": "in-memory bus", "partitions": [
                {"topic": "onex.acme.hello.cmd.v1", "partition": 3, "lag": 42, "in_flight": 2, "paused": true,
                 "committed": 17, "position": 19, "high_watermark": 61}]},
            "nodes": [{"id": "echo", "operations": ["local.echo", "local.error"], "concurrency": 64,
                       "publish_topic": "onex.acme.hello.evt.v1",
                       "counts": {"received": 12, "succeeded": 9, "failed": 3, "dead_lettered": 1}}],
            "handlers": [{"name": "local", "handler_type": "local", "healthy": true, "detail": "ok",
                          "breaker": "half_open",
                          "calls": {"calls": 12, "errors": 3, "p50_ms": 0.25, "p99_ms": 1.5, "max_ms": 2.0,
                                    "last_error": {"code": "PERMANENT", "message": "boom\u{1b}[31m\nred", "at_unix_ms": 1}}}],
            "recent": [],
            "dead_letters": [{"envelope_id": null, "original_topic": "onex.acme.hello.cmd.v1", "partition": 3,
                              "offset": 7, "code": "ENVELOPE_VALIDATION", "reason": "not JSON", "at": "2025-01-01T00:00:00Z"}]
        }))
        .unwrap()
    }

    #[test]
    fn the_summary_shows_counts_handlers_partitions_dead_letters_and_why_not_ready() {
        let s = sample(false);
        let out = render(&s, &reasons_from(&s));
        for expected in [
            "phase      draining",
            "ready      NO",
            "uptime     1h 2m 5s",
            "received 12 · succeeded 9 · failed 3 · dead-lettered 1 · publish errors 0",
            "in flight  2 (oldest 1250 ms in node echo, envelope 0193-a)",
            "local.echo, local.error",
            "half-open",
            "0.25 ms",
            "onex.acme.hello.cmd.v1  ",
            "paused",
            "onex.acme.hello.cmd.v1[3]@7",
            "Not ready:\n  - draining: shutting down, 2 envelope(s) in flight",
        ] {
            assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
        }
        // Escape sequences and newlines from the API do not reach the terminal.
        assert!(!out.contains('\u{1b}'), "{out}");
        assert!(out.contains(r"boom\u{1b}[31m\nred"), "{out}");
    }

    #[test]
    fn a_ready_host_has_no_reasons_section() {
        let out = render(&sample(true), &[]);
        assert!(out.contains("ready      yes"), "{out}");
        assert!(!out.contains("Not ready"), "{out}");
    }

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_284_311), "1,284,311");
        assert_eq!(signed(-12_345), "-12,345");
    }

    #[test]
    fn numbers_are_right_aligned_under_their_headers() {
        let t = table(&["NAME", ">COUNT"], vec![vec!["a".into(), "7".into()], vec!["bbbb".into(), "1234".into()]], "");
        assert_eq!(t, "  NAME  COUNT\n  a         7\n  bbbb   1234\n");
    }

    #[test]
    fn urls_get_a_scheme_and_a_trailing_slash_and_bad_ones_are_usage_errors() {
        assert_eq!(base_url("127.0.0.1:9").unwrap().as_str(), "http://127.0.0.1:9/");
        assert_eq!(base_url("http://h:1/admin").unwrap().as_str(), "http://h:1/admin/");
        assert!(matches!(base_url("ftp://h/"), Err(Failure::Usage(_))));
        assert!(matches!(base_url("http://"), Err(Failure::Usage(_))));
    }
}
