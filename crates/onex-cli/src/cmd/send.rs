//! `onex send`: send envelopes, print outcomes as JSON lines, exit when all are answered.

use std::path::Path;
use std::process::ExitCode;

use onex_core::{Envelope, NodeId, SystemClock, UuidV7Ids};
use onex_runtime::Outcome;
use serde_json::{Value, json};

use super::session::{Input, Session};

pub async fn run(
    path: &Path,
    operation: Option<&str>,
    payload: &str,
    target: Option<&str>,
    topic: Option<&str>,
) -> ExitCode {
    let input = match operation {
        Some(op) => match serde_json::from_str::<Value>(payload) {
            Ok(payload) => {
                let mut envelope = Envelope::command(&UuidV7Ids, &SystemClock::new(), op, payload);
                envelope.target_node = target.map(NodeId::from);
                Input::List(vec![envelope])
            }
            Err(e) => {
                eprintln!("error: --payload is not valid JSON: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => Input::Stdin,
    };
    let Some(mut s) = Session::start(path, topic, "onex-send").await else { return ExitCode::FAILURE };
    let mut all_ok = true;
    s.pump(
        input,
        |_, _| {},
        |outcome| {
            let line = match outcome {
                Outcome::Response { envelope, .. } => {
                    all_ok &= envelope.success == Some(true);
                    serde_json::to_value(envelope).unwrap_or(Value::Null)
                }
                Outcome::DeadLetter { record, .. } => {
                    all_ok = false;
                    json!({ "dead_letter": record })
                }
                Outcome::Unreadable { topic, reason } => {
                    all_ok = false;
                    json!({ "unreadable": { "topic": topic.as_str(), "reason": reason } })
                }
            };
            println!("{line}");
        },
    )
    .await;
    s.host.shutdown().await;
    if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
