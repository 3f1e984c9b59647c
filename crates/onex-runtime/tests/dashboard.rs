//! The dashboard page in a real browser: headless Chromium loads `/` from a
//! running host's admin server and we read the DOM it renders.
//!
//! Chromium's virtual time (`--virtual-time-budget`) runs the page's 1 s
//! polling without waiting in real time: the budget ends after a few polls and
//! Chromium prints the DOM (`--dump-dom`) or writes a screenshot. Nothing here
//! sleeps.
//!
//! Needs Debian's `chromium` (`scripts/services.sh` installs it); `ONEX_CHROMIUM`
//! names another Chromium or Chrome binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail by panicking")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use onex_core::contract::{AdminSpec, Environment, MapSources, load_runtime_contract};
use onex_core::{Envelope, ErrorCode, Operation, RuntimeError, SystemClock, UuidV7Ids};
use onex_handlers::LocalHandler;
use onex_runtime::{AdminServer, Client, Node, NodeOptions, Outcome, RunningHost, RuntimeHost};
use serde_json::{Value, json};

/// A memory-bus runtime whose `echo` node routes `local.*` to the `local` handler (through its
/// resilience stack, so the dashboard has calls, latency and a breaker to show).
const RUNTIME: &str = "runtime:\n  name: dash\n  event_bus:\n    kind: memory\n    config:\n      topics: \
{input: onex.acme.dash.cmd.v1, output: onex.acme.dash.evt.v1, dlq: onex.acme.dash.dlq.v1}\n  handlers:\n    - {type: local}\n  \
nodes:\n    - {slug: echo, contract: echo.yaml}\n";

const ECHO: &str = "name: echo\ncontract_version: {major: 1, minor: 0, patch: 0}\nnode_type: EFFECT_GENERIC\n\
handler_routing:\n  handlers:\n    - {operation: local.echo, handler_type: local}\n    - {operation: local.error, handler_type: local}\n";

/// Markup in user-controlled strings: an operation name and a failure reason.
const EVIL_OPERATION: &str = "<img src=x onerror=\"document.title='pwned'\">";
const EVIL_REASON: &str = "<script>document.title='pwned'</script><b>bold</b>";

/// A node written in Rust, as in `examples/rust_node.rs`: an order's total.
#[derive(Debug)]
struct OrderTotal;

#[async_trait]
impl Node for OrderTotal {
    fn operations(&self) -> Vec<Operation> {
        vec![Operation::from("orders.total")]
    }

    async fn process(&self, envelope: &Envelope) -> Result<Value, RuntimeError> {
        let lines = envelope.payload["lines"]
            .as_array()
            .ok_or_else(|| RuntimeError::new(ErrorCode::EnvelopeValidation, "payload needs `lines`"))?;
        let total: i64 =
            lines.iter().map(|l| l["qty"].as_i64().unwrap_or(0) * l["price_cents"].as_i64().unwrap_or(0)).sum();
        Ok(json!({ "total_cents": total }))
    }
}

struct Setup {
    running: RunningHost,
    admin: AdminServer,
    client: Client,
}

async fn setup(token: Option<&str>) -> Setup {
    let sources = MapSources::new().with_file("onex.yaml", RUNTIME).with_file("echo.yaml", ECHO);
    let contract = load_runtime_contract(Path::new("onex.yaml"), &sources).unwrap_or_else(|d| panic!("{d:?}")).contract;
    let local = Arc::new(LocalHandler::new(Environment::Dev).unwrap());
    let host = RuntimeHost::builder()
        .contract(contract)
        .handler("local", local)
        .node("totals", Arc::new(OrderTotal), NodeOptions::default())
        .build()
        .await
        .unwrap();
    let spec = AdminSpec { port: 0, token: token.map(str::to_owned), ..AdminSpec::default() };
    let admin = host.serve_admin(&spec).await.unwrap();
    let running = host.start().await.unwrap();
    let client =
        Client::connect(Arc::clone(running.bus()), "test", &running.output_topics(), &[running.dlq_topic().clone()])
            .await
            .unwrap();
    Setup { running, admin, client }
}

fn command(operation: &str, payload: Value, key: usize) -> Envelope {
    let mut e = Envelope::command(&UuidV7Ids, &SystemClock::new(), operation, payload);
    e.metadata.partition_key = Some(format!("entity-{key}"));
    e
}

/// Waits for `responses` response envelopes and `dead_letters` DLQ records.
async fn outcomes(client: &mut Client, mut responses: usize, mut dead_letters: usize) {
    let wait = async {
        while responses + dead_letters > 0 {
            match client.next().await.unwrap().unwrap() {
                Outcome::Response { .. } => responses -= 1,
                Outcome::DeadLetter { .. } => dead_letters -= 1,
                Outcome::Unreadable { reason, .. } => panic!("unreadable outcome: {reason}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait).await.expect("every envelope answered within 30 s");
}

/// Waits until the host has booked every outcome (counters, per-node counts, in flight):
/// a client sees an outcome as soon as it is published, a moment before that.
async fn settle(running: &RunningHost, responses: u64, dead_letters: u64) {
    let wait = async {
        loop {
            let s = running.status().await;
            let booked: u64 = s.nodes.iter().map(|n| n.counts.received - n.counts.succeeded - n.counts.failed).sum();
            if s.stats.succeeded + s.stats.failed == responses
                && s.stats.dead_lettered == dead_letters
                && s.in_flight == 0
                && booked == 0
            {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait).await.expect("the host books every outcome within 30 s");
}

// ---- Chromium --------------------------------------------------------------------------------

struct Chromium {
    bin: PathBuf,
    /// Chromium's sandbox refuses to run as root.
    no_sandbox: bool,
}

fn chromium() -> Chromium {
    let bin =
        std::env::var_os("ONEX_CHROMIUM").map(PathBuf::from).or_else(|| on_path("chromium")).unwrap_or_else(|| {
            panic!(
                "chromium is not installed, and this test drives it headless: run scripts/services.sh \
             (it installs Debian's chromium), or set ONEX_CHROMIUM to a Chromium or Chrome binary"
            )
        });
    Chromium { bin, no_sandbox: running_as_root() }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|p| p.is_file())
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").ok().is_some_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .is_some_and(|uid| uid == "0")
    })
}

impl Chromium {
    /// Loads `url` headless, lets the page run `virtual_ms` of virtual time, and returns stdout.
    async fn run(&self, url: &str, virtual_ms: u32, extra: &[String]) -> String {
        let profile = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chromium-{}", uuid::Uuid::now_v7()));
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "--headless=new",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--mute-audio",
            "--force-prefers-reduced-motion",
        ]);
        cmd.arg(format!("--user-data-dir={}", profile.display()));
        cmd.arg(format!("--virtual-time-budget={virtual_ms}"));
        if self.no_sandbox {
            cmd.arg("--no-sandbox");
        }
        cmd.args(extra).arg(url).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        let pid = child.id();
        let waited = tokio::time::timeout(
            Duration::from_secs(90),
            tokio::task::spawn_blocking(move || child.wait_with_output()),
        )
        .await;
        let output = match waited {
            Ok(joined) => joined.unwrap().unwrap(),
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                panic!("chromium did not finish within 90 s ({url})");
            }
        };
        let _ = std::fs::remove_dir_all(&profile);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "chromium failed ({}) on {url}:\n{stderr}", output.status);
        String::from_utf8(output.stdout).unwrap()
    }

    /// The DOM after `virtual_ms` of virtual time.
    async fn dump_dom(&self, url: &str, virtual_ms: u32) -> String {
        let dom = self.run(url, virtual_ms, &["--dump-dom".to_owned()]).await;
        assert!(dom.contains("</html>"), "chromium printed no DOM for {url}:\n{dom}");
        dom
    }
}

// ---- Reading the dumped DOM ------------------------------------------------------------------

/// The start tag holding `needle`.
fn tag_with<'a>(html: &'a str, needle: &str) -> &'a str {
    let at = html.find(needle).unwrap_or_else(|| panic!("no `{needle}` in the page:\n{html}"));
    let start = html[..at].rfind('<').unwrap();
    let end = at + html[at..].find('>').unwrap();
    &html[start..=end]
}

fn attr(tag: &str, name: &str) -> String {
    let key = format!(" {name}=\"");
    let from = tag.find(&key).unwrap_or_else(|| panic!("no {name} in {tag}")) + key.len();
    tag[from..from + tag[from..].find('"').unwrap()].to_owned()
}

/// The `data-value` of the element with `data-testid="testid"`.
fn value(dom: &str, testid: &str) -> String {
    attr(tag_with(dom, &format!("data-testid=\"{testid}\"")), "data-value")
}

fn number(dom: &str, testid: &str) -> u64 {
    let v = value(dom, testid);
    v.parse().unwrap_or_else(|_| panic!("{testid} is `{v}`, not a count"))
}

/// The `data-value` of the cell `data-field="field"` in the table row `data-testid="row"`.
fn cell(dom: &str, row: &str, field: &str) -> String {
    let needle = format!("data-testid=\"{row}\"");
    let at = dom.find(&needle).unwrap_or_else(|| panic!("no row {row} in the page:\n{dom}"));
    let tr = &dom[at..at + dom[at..].find("</tr>").unwrap()];
    attr(tag_with(tr, &format!("data-field=\"{field}\"")), "data-value")
}

fn body_state(dom: &str) -> String {
    attr(tag_with(dom, "<body"), "data-state")
}

// ---- Tests -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_live_counts_escapes_api_strings_and_renders_a_screenshot() {
    let chromium = chromium();
    let Setup { running, admin, mut client } = setup(None).await;
    let url = format!("http://{}/", admin.local_addr());
    let input = running.input_topics()[0].clone();
    let sender = client.sender();

    // Round 1: 20 echoes, 2 orders, a failure whose reason is markup (error response + DLQ), an
    // operation named like markup (no node takes it: error response), and bytes that are not an
    // envelope (DLQ only).
    for i in 0..20 {
        sender.send(&input, &command("local.echo", json!({"i": i}), i)).await.unwrap();
    }
    for i in 0..2 {
        let lines = json!({"lines": [{"qty": 2, "price_cents": 450}, {"qty": 1, "price_cents": 1299}]});
        sender.send(&input, &command("orders.total", lines, 100 + i)).await.unwrap();
    }
    sender
        .send(&input, &command("local.error", json!({"class": "permanent", "message": EVIL_REASON}), 200))
        .await
        .unwrap();
    sender.send(&input, &command(EVIL_OPERATION, json!({}), 201)).await.unwrap();
    sender.send_raw(&input, None, Bytes::from_static(b"not an envelope <i>at all</i>")).await.unwrap();
    outcomes(&mut client, 24, 2).await;
    settle(&running, 24, 2).await;

    let dom = chromium.dump_dom(&url, 3_500).await;
    assert_eq!(body_state(&dom), "live", "the page polled /api/status successfully");
    assert!(number(&dom, "polls") >= 2, "the page refreshes: {} polls", value(&dom, "polls"));
    assert_eq!(value(&dom, "ready"), "true");
    assert_eq!(value(&dom, "bus-ready"), "true");
    assert_eq!(number(&dom, "stat-received"), 25);
    assert_eq!(number(&dom, "stat-succeeded"), 22);
    assert_eq!(number(&dom, "stat-failed"), 2);
    assert_eq!(number(&dom, "stat-dead-lettered"), 2);
    assert_eq!(number(&dom, "stat-in-flight"), 0);
    assert_eq!(cell(&dom, "node-echo", "received"), "21");
    assert_eq!(cell(&dom, "node-echo", "succeeded"), "20");
    assert_eq!(cell(&dom, "node-echo", "failed"), "1");
    assert_eq!(cell(&dom, "node-echo", "dead_lettered"), "1");
    assert_eq!(cell(&dom, "node-totals", "received"), "2");
    assert_eq!(cell(&dom, "handler-local", "healthy"), "true");
    assert_eq!(cell(&dom, "handler-local", "breaker"), "closed");
    assert_eq!(cell(&dom, "handler-local", "calls"), "21");

    // Strings from the API are text, never markup: the only element-shaped `<` left are the page's own.
    assert!(dom.contains("&lt;img src=x onerror=\"document.title='pwned'\"&gt;"), "the operation is shown as text");
    assert!(
        dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;"),
        "the reason too"
    );
    assert!(!dom.contains("<img") && !dom.contains("<b>") && !dom.contains("<i>"), "no injected elements:\n{dom}");
    assert_eq!(dom.matches("<script").count(), 1, "only the page's own script");
    assert!(!dom.contains("pwned</title>"), "no injected script ran");

    // Round 2: 15 more; a fresh load shows the new counts.
    for i in 0..15 {
        sender.send(&input, &command("local.echo", json!({"round": 2, "i": i}), i)).await.unwrap();
    }
    outcomes(&mut client, 15, 0).await;
    settle(&running, 39, 2).await;
    let again = chromium.dump_dom(&url, 2_500).await;
    assert_eq!(number(&again, "stat-received"), 40, "received went from 25 to 40");
    assert_eq!(number(&again, "stat-succeeded"), 37);
    assert_eq!(cell(&again, "node-echo", "received"), "36");
    assert_eq!(cell(&again, "handler-local", "calls"), "36");

    // A screenshot under load: one envelope at a time, each sent when the previous one is answered.
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn({
        let stop = Arc::clone(&stop);
        let input = input.clone();
        async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                sender.send(&input, &command("local.echo", json!({"load": i}), i)).await.unwrap();
                outcomes(&mut client, 1, 0).await;
                i += 1;
            }
            i
        }
    });
    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&png);
    chromium.run(&url, 4_500, &[format!("--screenshot={}", png.display()), "--window-size=1280,900".to_owned()]).await;
    stop.store(true, Ordering::Relaxed);
    let sent_under_load = load.await.unwrap();
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is a PNG", png.display());
    let (width, height) =
        (u32::from_be_bytes(bytes[16..20].try_into().unwrap()), u32::from_be_bytes(bytes[20..24].try_into().unwrap()));
    assert_eq!((width, height), (1280, 900), "the window size");
    assert!(bytes.len() > 40_000, "a blank page compresses to a few KB; this one is {} bytes", bytes.len());
    println!(
        "dashboard screenshot: {} ({} bytes; {sent_under_load} envelopes sent while it loaded)",
        png.display(),
        bytes.len()
    );

    // Stopped (the admin server outlives the host): not ready, and the page says why.
    running.shutdown().await;
    let stopped = chromium.dump_dom(&url, 1_500).await;
    assert_eq!(value(&stopped, "ready"), "false");
    let banner = tag_with(&stopped, "data-testid=\"not-ready\"");
    assert!(!banner.contains("hidden"), "the not-ready banner shows: {banner}");
    assert!(stopped.contains("<li>phase: stopped</li>"), "{stopped}");
    admin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_admin_token_the_page_asks_for_it_and_shows_no_data() {
    let chromium = chromium();
    let Setup { running, admin, .. } = setup(Some("dash-s3cret")).await;
    let url = format!("http://{}/", admin.local_addr());
    let dom = chromium.dump_dom(&url, 2_500).await;
    assert_eq!(body_state(&dom), "auth", "401 from /api/status shows the token form");
    assert!(!tag_with(&dom, "id=\"auth\"").contains("hidden"), "the token form is visible");
    assert!(tag_with(&dom, "id=\"main\"").contains("hidden"), "the data panels are hidden");
    assert_eq!(number(&dom, "polls"), 0, "no status was read");
    assert_eq!(value(&dom, "stat-received"), "0");
    assert!(!dom.contains("dash-s3cret"));
    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-token.png");
    chromium.run(&url, 1_000, &[format!("--screenshot={}", png.display()), "--window-size=1280,900".to_owned()]).await;
    assert!(std::fs::metadata(&png).unwrap().len() > 5_000, "{} has the token form", png.display());
    println!("token form screenshot: {}", png.display());
    running.shutdown().await;
    admin.stop().await;
}
