//! `onex dlq replay`: publish dead letters' original bytes again.

use bytes::Bytes;
use onex_bus::kafka::KafkaBus;
use onex_bus::{EventBus, Message};
use onex_core::{DeadLetter, Envelope, TopicConvention, TopicKind, TopicName};

use super::{Entry, render};

/// What replaying one dead letter publishes.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub topic: TopicName,
    pub payload: Vec<u8>,
    /// Why the host will likely dead-letter it again; replayed anyway.
    pub warning: Option<String>,
}

/// Plans the replay of `record` to `to`, else to its original topic. `Err` says why it is skipped.
pub fn plan(record: &DeadLetter, to: Option<&TopicName>, convention: TopicConvention) -> Result<Plan, String> {
    let payload = match (&record.original_payload, &record.original_payload_hex) {
        (None, None) => return Err("the record keeps no original payload".into()),
        _ => record.original_bytes().ok_or("its original_payload_hex is not valid hex")?,
    };
    let topic = match to {
        Some(t) => t.clone(),
        None => TopicName::parse(&record.original_topic, convention).map_err(|e| {
            format!("its original topic `{}` is not a valid topic name ({e}); pass --to TOPIC", record.original_topic)
        })?,
    };
    let warning = match Envelope::from_json(&payload) {
        Err(e) => {
            Some(format!("the original bytes are not a valid envelope ({e}); a host will dead-letter them again"))
        }
        Ok(env) if env.is_response && topic.kind() == Some(TopicKind::Cmd) => {
            Some(format!("it is a response envelope; a host dead-letters responses on command topic `{topic}` again"))
        }
        Ok(_) => None,
    };
    Ok(Plan { topic, payload, warning })
}

/// Replays `entries` in order; prints one line per record and a summary. With
/// `dry_run` nothing is published. Returns false when a publish failed (the
/// rest are then not replayed).
pub async fn run(
    bus: &KafkaBus,
    entries: &[&Entry],
    to: Option<&TopicName>,
    convention: TopicConvention,
    dry_run: bool,
) -> bool {
    let (mut replayed, mut skipped) = (0usize, 0usize);
    for entry in entries {
        let at = format!("{}:{}", entry.partition, entry.offset);
        let plan = match plan(&entry.record, to, convention) {
            Ok(plan) => plan,
            Err(why) => {
                println!("skipped {at}: {why}");
                skipped += 1;
                continue;
            }
        };
        if let Some(warning) = &plan.warning {
            eprintln!("warning: {at}: {warning}");
        }
        let what = format!(
            "{at} → {} (key {}, {} bytes{})",
            plan.topic,
            render::key(entry.key.as_deref()),
            plan.payload.len(),
            entry.record.envelope_id.map(|id| format!(", envelope {id}")).unwrap_or_default()
        );
        if dry_run {
            println!("would replay {what}");
            replayed += 1;
            continue;
        }
        let message = Message::new(plan.topic.clone(), entry.key.clone(), Bytes::from(plan.payload));
        if let Err(e) = bus.publish(message).await {
            eprintln!("error: replaying {at} to `{}` failed: {e}", plan.topic);
            eprintln!("{replayed} replayed and {skipped} skipped before the failure; the rest were not replayed.");
            return false;
        }
        println!("replayed {what}");
        replayed += 1;
    }
    if dry_run {
        println!("dry run: {replayed} would be replayed, {skipped} skipped; nothing was published.");
    } else {
        println!("{replayed} replayed, {skipped} skipped.");
    }
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use onex_core::{ErrorClass, ErrorCode, SystemClock, Timestamp, UuidV7Ids};
    use serde_json::json;

    use super::*;

    fn record(original: Option<&[u8]>) -> DeadLetter {
        let r = DeadLetter {
            reason: "r".into(),
            error_code: ErrorCode::EnvelopeValidation,
            error_class: ErrorClass::Permanent,
            original_topic: "onex.acme.orders.cmd.v1".into(),
            partition: 0,
            offset: 0,
            envelope_id: None,
            correlation_id: None,
            attempts: 0,
            error_response_sent: false,
            first_failure_at: Timestamp::UNIX_EPOCH,
            last_failure_at: Timestamp::UNIX_EPOCH,
            original_payload: None,
            original_payload_hex: None,
        };
        match original {
            Some(bytes) => r.with_original(bytes),
            None => r,
        }
    }

    fn conv() -> TopicConvention {
        TopicConvention::default()
    }

    #[test]
    fn a_valid_envelope_goes_back_to_its_original_topic_without_warning() {
        let env = Envelope::command(&UuidV7Ids, &SystemClock::new(), "orders.place", json!({}));
        let p = plan(&record(Some(&env.to_json())), None, conv()).unwrap();
        assert_eq!(p.topic.as_str(), "onex.acme.orders.cmd.v1");
        assert_eq!(p.payload, env.to_json());
        assert_eq!(p.warning, None);
    }

    #[test]
    fn to_overrides_the_topic_and_binary_originals_are_decoded() {
        let to: TopicName = "onex.acme.orders.cmd.v2".parse().unwrap();
        let p = plan(&record(Some(&[0xff, 0x00])), Some(&to), conv()).unwrap();
        assert_eq!(p.topic, to);
        assert_eq!(p.payload, vec![0xff, 0x00]);
        assert!(p.warning.unwrap().contains("not a valid envelope"));
    }

    #[test]
    fn records_without_original_bytes_or_with_a_bad_topic_are_skipped() {
        assert!(plan(&record(None), None, conv()).unwrap_err().contains("no original payload"));
        let bad_hex = DeadLetter { original_payload_hex: Some("zz".into()), ..record(None) };
        assert!(plan(&bad_hex, None, conv()).unwrap_err().contains("not valid hex"));
        let bad_topic = DeadLetter { original_topic: "nope".into(), ..record(Some(b"{}")) };
        assert!(plan(&bad_topic, None, conv()).unwrap_err().contains("--to TOPIC"));
    }

    #[test]
    fn a_response_replayed_onto_a_command_topic_is_warned_about() {
        let mut env = Envelope::command(&UuidV7Ids, &SystemClock::new(), "orders.place", json!({}));
        env.is_response = true;
        let p = plan(&record(Some(&env.to_json())), None, conv()).unwrap();
        assert!(p.warning.unwrap().contains("response envelope"));
    }
}
