//! Which dead letters a `list` or `replay` applies to: every given criterion must hold.

use clap::Args;
use onex_core::{DeadLetter, EnvelopeId, ErrorClass, ErrorCode, Timestamp};

const CLASSES: [ErrorClass; 4] =
    [ErrorClass::Transient, ErrorClass::Permanent, ErrorClass::Conflict, ErrorClass::Rejected];

/// Criteria on dead-letter records; all given ones must match (AND).
#[derive(Debug, Clone, Default, Args)]
pub struct Filter {
    /// Only records with this error code, e.g. `ENVELOPE_VALIDATION` or `HANDLER_EXECUTION`.
    #[arg(long, value_name = "CODE", value_parser = error_code)]
    pub error_code: Option<ErrorCode>,
    /// Only records with this error class: transient, permanent, conflict or rejected.
    #[arg(long, value_name = "CLASS", value_parser = error_class)]
    pub error_class: Option<ErrorClass>,
    /// Only records that came from this topic.
    #[arg(long, value_name = "TOPIC")]
    pub original_topic: Option<String>,
    /// Only the record of this envelope (UUID).
    #[arg(long, value_name = "ID", value_parser = envelope_id)]
    pub envelope_id: Option<EnvelopeId>,
    /// Only records whose last failure is at or after this time (RFC 3339, e.g. `2025-06-01T12:00:00Z`).
    #[arg(long, value_name = "RFC3339", value_parser = since)]
    pub since: Option<Timestamp>,
}

impl Filter {
    /// Whether `record` meets every criterion given.
    pub fn matches(&self, record: &DeadLetter) -> bool {
        self.error_code.is_none_or(|c| c == record.error_code)
            && self.error_class.is_none_or(|c| c == record.error_class)
            && self.original_topic.as_deref().is_none_or(|t| t == record.original_topic)
            && self.envelope_id.is_none_or(|id| record.envelope_id == Some(id))
            && self.since.is_none_or(|t| record.last_failure_at >= t)
    }

    /// Whether no criterion is given (everything matches).
    pub fn is_empty(&self) -> bool {
        self.error_code.is_none()
            && self.error_class.is_none()
            && self.original_topic.is_none()
            && self.envelope_id.is_none()
            && self.since.is_none()
    }
}

// Parsers for clap: a bad value is a usage error (exit 2) that lists what is accepted.

fn error_code(s: &str) -> Result<ErrorCode, String> {
    ErrorCode::ALL.iter().copied().find(|c| c.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
        let all: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        format!("unknown error code; use one of {}", all.join(", "))
    })
}

fn error_class(s: &str) -> Result<ErrorClass, String> {
    CLASSES.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
        let all: Vec<_> = CLASSES.iter().map(|c| c.as_str()).collect();
        format!("unknown error class; use one of {}", all.join(", "))
    })
}

fn envelope_id(s: &str) -> Result<EnvelopeId, String> {
    uuid::Uuid::parse_str(s)
        .map(EnvelopeId)
        .map_err(|e| format!("not a UUID ({e}); copy the envelope id from `onex dlq list`"))
}

fn since(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(s).ok_or_else(|| {
        "not an RFC 3339 time; write it like `2025-06-01T12:00:00Z` or `2025-06-01T14:00:00+02:00`".into()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn record() -> DeadLetter {
        DeadLetter {
            reason: "asked to fail".into(),
            error_code: ErrorCode::HandlerExecution,
            error_class: ErrorClass::Permanent,
            original_topic: "onex.acme.orders.cmd.v1".into(),
            partition: 1,
            offset: 7,
            envelope_id: Some(EnvelopeId(uuid::Uuid::from_u128(42))),
            correlation_id: None,
            attempts: 1,
            error_response_sent: true,
            first_failure_at: Timestamp::parse_rfc3339("2025-06-01T12:00:00Z").unwrap(),
            last_failure_at: Timestamp::parse_rfc3339("2025-06-01T12:00:05Z").unwrap(),
            original_payload: Some("{}".into()),
            original_payload_hex: None,
        }
    }

    #[test]
    fn an_empty_filter_matches_everything() {
        assert!(Filter::default().is_empty());
        assert!(Filter::default().matches(&record()));
    }

    #[test]
    fn each_criterion_selects_on_its_field() {
        let r = record();
        let yes = |f: Filter| assert!(f.matches(&r), "{f:?} should match");
        let no = |f: Filter| assert!(!f.matches(&r), "{f:?} should not match");
        yes(Filter { error_code: Some(ErrorCode::HandlerExecution), ..Filter::default() });
        no(Filter { error_code: Some(ErrorCode::EnvelopeValidation), ..Filter::default() });
        yes(Filter { error_class: Some(ErrorClass::Permanent), ..Filter::default() });
        no(Filter { error_class: Some(ErrorClass::Transient), ..Filter::default() });
        yes(Filter { original_topic: Some("onex.acme.orders.cmd.v1".into()), ..Filter::default() });
        no(Filter { original_topic: Some("onex.acme.orders.cmd.v2".into()), ..Filter::default() });
        yes(Filter { envelope_id: r.envelope_id, ..Filter::default() });
        no(Filter { envelope_id: Some(EnvelopeId(uuid::Uuid::from_u128(43))), ..Filter::default() });
    }

    #[test]
    fn since_includes_the_boundary_and_compares_instants_across_offsets() {
        let r = record();
        let at = |s: &str| Filter { since: Some(since(s).unwrap()), ..Filter::default() };
        assert!(at("2025-06-01T12:00:05Z").matches(&r));
        assert!(at("2025-06-01T12:00:04Z").matches(&r));
        assert!(!at("2025-06-01T12:00:06Z").matches(&r));
        // 14:00:06 at +02:00 is 12:00:06Z: after the failure.
        assert!(!at("2025-06-01T14:00:06+02:00").matches(&r));
    }

    #[test]
    fn criteria_combine_with_and() {
        let f = Filter {
            error_code: Some(ErrorCode::HandlerExecution),
            error_class: Some(ErrorClass::Transient),
            ..Filter::default()
        };
        assert!(!f.is_empty());
        assert!(!f.matches(&record()));
    }

    #[test]
    fn records_without_an_envelope_id_never_match_an_id() {
        let r = DeadLetter { envelope_id: None, ..record() };
        assert!(!Filter { envelope_id: Some(EnvelopeId(uuid::Uuid::from_u128(42))), ..Filter::default() }.matches(&r));
    }

    #[test]
    fn values_parse_case_insensitively_and_bad_ones_list_the_choices() {
        assert_eq!(error_code("handler_execution"), Ok(ErrorCode::HandlerExecution));
        assert!(error_code("NOPE").unwrap_err().contains("ENVELOPE_VALIDATION"));
        assert_eq!(error_class("Permanent"), Ok(ErrorClass::Permanent));
        assert!(error_class("fatal").unwrap_err().contains("transient, permanent, conflict, rejected"));
        assert!(envelope_id("x").is_err());
        assert!(since("yesterday").unwrap_err().contains("2025-06-01T12:00:00Z"));
    }
}
