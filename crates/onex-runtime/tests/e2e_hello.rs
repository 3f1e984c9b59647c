//! End to end: the host runs examples/hello on the in-memory bus; a client
//! sends 1,000 envelopes and one malformed message and checks that each got
//! exactly one correct outcome.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use onex_core::contract::load_runtime_contract;
use onex_core::{Envelope, EnvelopeId, ErrorClass, ErrorCode, ManualClock, NodeId, SequentialIds};
use onex_runtime::{Client, Outcome, RuntimeHost, StdSources};
use serde_json::{Value, json};

fn hello_contract() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello/runtime.yaml")
}

/// What each sent envelope should come back as.
enum Expect {
    Ok { node: &'static str, payload: Value },
    Err { code: ErrorCode, class: ErrorClass },
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_answers_every_envelope_exactly_once() {
    let loaded = load_runtime_contract(&hello_contract(), &StdSources).unwrap_or_else(|d| panic!("{d:?}"));
    let running = RuntimeHost::builder().contract(loaded.contract).build().await.unwrap().start().await.unwrap();
    let input = running.input_topics()[0].clone();
    let mut client =
        Client::connect(Arc::clone(running.bus()), "e2e", &running.output_topics(), &[running.dlq_topic().clone()])
            .await
            .unwrap();
    let sender = client.sender();

    // Given 1,000 envelopes of five kinds, and one message that is not JSON.
    let ids = SequentialIds::new();
    let clock = ManualClock::at_fixed_start();
    let mut expected: HashMap<EnvelopeId, (Envelope, Expect)> = HashMap::new();
    for i in 0..1000u32 {
        let (op, payload, expect) = match i % 20 {
            0..=7 => ("local.echo", json!({"i": i}), Expect::Ok { node: "echo", payload: json!({"i": i}) }),
            8..=13 => (
                "greet",
                json!({"name": format!("n{i}")}),
                Expect::Ok { node: "greeter", payload: json!({"greeting": format!("Hello, n{i}!")}) },
            ),
            14..=17 => {
                ("local.transform", json!({"s": "abc"}), Expect::Ok { node: "echo", payload: json!({"s": "ABC"}) })
            }
            18 => (
                "local.nope",
                json!({}),
                Expect::Err { code: ErrorCode::HandlerNotFound, class: ErrorClass::Permanent },
            ),
            // Permanent: never retried (so no backoff in real time here), and dead-lettered by default.
            _ => (
                "local.error",
                json!({"class": "permanent"}),
                Expect::Err { code: ErrorCode::HandlerExecution, class: ErrorClass::Permanent },
            ),
        };
        let mut e = Envelope::command(&ids, &clock, op, payload);
        e.metadata.partition_key = Some(format!("entity-{}", i % 37));
        e.source_node = Some(NodeId::from("e2e-client"));
        expected.insert(e.envelope_id, (e, expect));
    }
    // When they are sent (from another task, so bounded queues never deadlock the test).
    let to_send: Vec<Envelope> = expected.values().map(|(e, _)| e.clone()).collect();
    let topic = input.clone();
    let producer = tokio::spawn(async move {
        for e in &to_send {
            sender.send(&topic, e).await.unwrap();
        }
        sender.send_raw(&topic, Some(Bytes::from_static(b"k")), Bytes::from_static(b"{not json")).await.unwrap();
    });

    // Then each gets exactly one correct response; the 50 permanent failures are
    // also dead-lettered (the default `dead_letter_on`), and so is the malformed message.
    let mut answered: HashMap<EnvelopeId, Envelope> = HashMap::new();
    let mut dead_letters = Vec::new();
    while answered.len() < 1000 || dead_letters.len() < 51 {
        match client.next().await.expect("bus closed early").unwrap() {
            Outcome::Response { envelope, .. } => {
                let cause = envelope.causation_id.expect("response without causation_id");
                assert!(answered.insert(cause, *envelope).is_none(), "two responses for {cause}");
            }
            Outcome::DeadLetter { record, .. } => dead_letters.push(*record),
            Outcome::Unreadable { reason, .. } => panic!("unreadable outcome: {reason}"),
        }
    }
    producer.await.unwrap();

    for (id, (request, expect)) in &expected {
        let response = answered.get(id).unwrap_or_else(|| panic!("no response for {id}"));
        assert_ne!(response.envelope_id, request.envelope_id);
        assert_eq!(response.correlation_id, request.correlation_id);
        assert_eq!(response.causation_id, Some(request.envelope_id));
        assert!(response.is_response);
        assert_eq!(response.target_node, Some(NodeId::from("e2e-client")));
        assert_eq!(response.metadata.partition_key, request.metadata.partition_key);
        match expect {
            Expect::Ok { node, payload } => {
                assert_eq!(response.success, Some(true), "{:?}", response.error);
                assert_eq!(response.source_node.as_ref().map(NodeId::as_str), Some(*node));
                assert_eq!(&response.payload, payload);
            }
            Expect::Err { code, class } => {
                assert_eq!(response.success, Some(false));
                let err = response.error.as_ref().expect("error envelope without error");
                assert_eq!((err.code, err.class), (*code, *class));
                if *code == ErrorCode::HandlerNotFound {
                    assert!(err.message.contains("available operations"), "{}", err.message);
                    assert!(err.message.contains("local.echo") && err.message.contains("greet"), "{}", err.message);
                }
            }
        }
    }
    assert_eq!(answered.len(), 1000);
    assert_eq!(dead_letters.len(), 51);
    let (malformed, failed): (Vec<_>, Vec<_>) = dead_letters.iter().partition(|d| d.envelope_id.is_none());
    assert_eq!(malformed.len(), 1);
    let dl = malformed[0];
    assert_eq!(dl.error_code, ErrorCode::EnvelopeValidation);
    assert_eq!(dl.original_topic, input.as_str());
    assert_eq!(dl.original_payload.as_deref(), Some("{not json"));
    assert!(dl.reason.contains("line 1"), "{}", dl.reason);
    assert!(!dl.error_response_sent);
    for dl in failed {
        let id = dl.envelope_id.expect("parsed");
        let (request, _) = &expected[&id];
        assert_eq!(request.operation.as_ref().map(|o| o.as_str()), Some("local.error"));
        assert_eq!(
            (dl.error_code, dl.error_class, dl.attempts),
            (ErrorCode::HandlerExecution, ErrorClass::Permanent, 1)
        );
        assert!(dl.error_response_sent);
        assert_eq!(dl.correlation_id, request.correlation_id);
        let original = Envelope::from_json(&dl.original_bytes().expect("original")).expect("original is the envelope");
        assert_eq!(original.envelope_id, id);
    }

    // And the accounting adds up: nothing else arrives once the host has stopped.
    let report = running.shutdown().await;
    assert!(report.drained);
    assert_eq!(report.stats.received, 1001);
    assert_eq!(report.stats.succeeded, 900);
    assert_eq!(report.stats.failed, 100);
    assert_eq!(report.stats.dead_lettered, 51);
    assert_eq!(report.stats.publish_errors, 0);
}

#[tokio::test]
async fn a_response_envelope_on_a_command_topic_is_dead_lettered_not_looped() {
    let loaded = load_runtime_contract(&hello_contract(), &StdSources).unwrap_or_else(|d| panic!("{d:?}"));
    let running = RuntimeHost::builder().contract(loaded.contract).build().await.unwrap().start().await.unwrap();
    let mut client =
        Client::connect(Arc::clone(running.bus()), "e2e", &running.output_topics(), &[running.dlq_topic().clone()])
            .await
            .unwrap();
    let mut e = Envelope::command(&SequentialIds::new(), &ManualClock::at_fixed_start(), "local.echo", json!({}));
    e.is_response = true;
    client.sender().send(&running.input_topics()[0], &e).await.unwrap();
    match client.next().await.unwrap().unwrap() {
        Outcome::DeadLetter { record, .. } => {
            assert_eq!(record.envelope_id, Some(e.envelope_id));
            assert!(record.reason.contains("response envelope"), "{}", record.reason);
        }
        other => panic!("expected a dead letter, got {other:?}"),
    }
    running.shutdown().await;
}
