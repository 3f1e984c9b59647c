//! `onex dev`: type envelopes, watch them flow.

use std::path::Path;
use std::process::ExitCode;

use onex_runtime::Outcome;

use super::session::{Input, Session};

pub async fn run(path: &Path, topic: Option<&str>) -> ExitCode {
    let Some(mut s) = Session::start(path, topic, "onex-dev").await else { return ExitCode::FAILURE };
    eprintln!(
        "onex dev: sending to {}; type `OPERATION {{json}}` or a JSON envelope per line, Ctrl-D to finish.",
        s.topic()
    );
    s.pump(
        Input::Stdin,
        |topic, envelope| {
            let op = envelope.operation.as_ref().map_or("-", |o| o.as_str());
            let target = envelope.target_node.as_ref().map(|n| format!("{n}:")).unwrap_or_default();
            println!("→ {topic}  {target}{op}  {}", envelope.payload);
        },
        |outcome| println!("{}", describe(outcome)),
    )
    .await;
    let report = s.host.shutdown().await;
    let st = report.stats;
    eprintln!(
        "onex dev: {} received, {} succeeded, {} failed, {} dead-lettered.",
        st.received, st.succeeded, st.failed, st.dead_lettered
    );
    ExitCode::SUCCESS
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Response { topic, envelope } => {
            let node = envelope.source_node.as_ref().map_or("-", |n| n.as_str());
            match &envelope.error {
                None => format!("← {topic}  ok     {node}  {}", envelope.payload),
                Some(err) => format!("← {topic}  error  {node}  {} ({}): {}", err.code, err.class, err.message),
            }
        }
        Outcome::DeadLetter { topic, record } => {
            format!("✗ {topic}  dead letter  {}: {}", record.error_code, record.reason)
        }
        Outcome::Unreadable { topic, reason } => format!("? {topic}  unreadable: {reason}"),
    }
}
