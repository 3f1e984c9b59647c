//! The dead-letter record: what goes to the DLQ topic and why.
//!
//! A message that cannot be processed is never dropped: it is wrapped in a
//! [`DeadLetter`] with enough context (where it came from, what failed, how
//! often) for an operator to inspect it and replay it.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::envelope::{CorrelationId, EnvelopeId};
use crate::error::{ErrorClass, ErrorCode};

/// One dead-lettered message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// What went wrong, for a human.
    pub reason: String,
    pub error_code: ErrorCode,
    pub error_class: ErrorClass,
    pub original_topic: String,
    pub partition: u32,
    pub offset: u64,
    /// Known when the message parsed as an envelope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope_id: Option<EnvelopeId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<CorrelationId>,
    /// Processing attempts made before giving up (0 when the message never parsed).
    pub attempts: u32,
    /// Whether the sender also got an error response. False when the message
    /// could not be answered (not an envelope, or a response on a command
    /// topic): then this record is its only outcome.
    #[serde(default)]
    pub error_response_sent: bool,
    pub first_failure_at: Timestamp,
    pub last_failure_at: Timestamp,
    /// The original bytes, when they are UTF-8 (always, for JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_payload: Option<String>,
    /// The original bytes as lowercase hex, when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_payload_hex: Option<String>,
}

impl DeadLetter {
    /// Stores `bytes` in whichever of the two payload fields fits.
    pub fn with_original(mut self, bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(s) => self.original_payload = Some(s.to_owned()),
            Err(_) => self.original_payload_hex = Some(bytes.iter().map(|b| format!("{b:02x}")).collect()),
        }
        self
    }

    /// The original bytes, decoded from whichever field holds them.
    pub fn original_bytes(&self) -> Option<Vec<u8>> {
        if let Some(s) = &self.original_payload {
            return Some(s.as_bytes().to_vec());
        }
        let hex = self.original_payload_hex.as_deref()?;
        (0..hex.len()).step_by(2).map(|i| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> DeadLetter {
        DeadLetter {
            reason: "not json".into(),
            error_code: ErrorCode::EnvelopeValidation,
            error_class: ErrorClass::Permanent,
            original_topic: "onex.acme.orders.cmd.v1".into(),
            partition: 2,
            offset: 41,
            envelope_id: None,
            correlation_id: None,
            attempts: 0,
            error_response_sent: false,
            first_failure_at: Timestamp::UNIX_EPOCH,
            last_failure_at: Timestamp::UNIX_EPOCH,
            original_payload: None,
            original_payload_hex: None,
        }
    }

    #[test]
    fn utf8_originals_are_kept_as_text() {
        let r = record().with_original(b"{oops");
        assert_eq!(r.original_payload.as_deref(), Some("{oops"));
        assert_eq!(r.original_bytes(), Some(b"{oops".to_vec()));
    }

    #[test]
    fn binary_originals_round_trip_through_hex() {
        let r = record().with_original(&[0xff, 0x00, 0x7f]);
        assert_eq!(r.original_payload_hex.as_deref(), Some("ff007f"));
        assert_eq!(r.original_bytes(), Some(vec![0xff, 0x00, 0x7f]));
        let json = serde_json::to_string(&r).unwrap_or_default();
        let back: Option<DeadLetter> = serde_json::from_str(&json).ok();
        assert_eq!(back, Some(r));
    }
}
