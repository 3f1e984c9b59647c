//! Topic names, parsed once and carried as a validated type.
//!
//! Two conventions exist. The default (seed 000) is
//! `onex.<tenant>.<domain>.<cmd|evt>.v<N>`; onex also accepts `dlq` in the
//! direction slot so a dead-letter topic can follow the same shape. Real
//! ONEX contracts use `onex.<kind>.<producer>.<event-name>.v<N>` with kind
//! `cmd | evt | intent | dlq | snapshot`; a runtime contract opts into it
//! with `topic_convention: onex_kind`.
//!
//! Segments are `[a-z0-9_-]`, start with a letter or digit, and may not be
//! empty. The namespaces `internal`, `debug`, `metrics`, `health` and
//! `admin` are reserved for the runtime itself.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Namespaces after `onex.` that user contracts may not use (seed 000).
pub const RESERVED_NAMESPACES: [&str; 5] = ["internal", "debug", "metrics", "health", "admin"];

/// Which naming convention a topic follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicConvention {
    /// `onex.<tenant>.<domain>.<cmd|evt|dlq>.v<N>` (seed 000; the default).
    #[default]
    TenantDomain,
    /// `onex.<cmd|evt|intent|dlq|snapshot>.<producer>.<event-name>.v<N>` (real ONEX contracts).
    OnexKind,
}

impl TopicConvention {
    /// The shape of a topic under this convention, for error messages.
    pub const fn pattern(self) -> &'static str {
        match self {
            Self::TenantDomain => "onex.<tenant>.<domain>.<cmd|evt>.v<N>",
            Self::OnexKind => "onex.<cmd|evt|intent|dlq|snapshot>.<producer>.<event-name>.v<N>",
        }
    }

    /// The value written in a runtime contract's `topic_convention` field.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TenantDomain => "tenant_domain",
            Self::OnexKind => "onex_kind",
        }
    }
}

/// What a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicKind {
    /// Commands into the runtime.
    Cmd,
    /// Events (results) out of the runtime.
    Evt,
    /// Intents (onex_kind convention only).
    Intent,
    /// Dead letters.
    Dlq,
    /// Snapshots (onex_kind convention only).
    Snapshot,
}

impl TopicKind {
    /// The segment spelling of this kind.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cmd => "cmd",
            Self::Evt => "evt",
            Self::Intent => "intent",
            Self::Dlq => "dlq",
            Self::Snapshot => "snapshot",
        }
    }
}

/// Why a string is not a valid topic name. Each variant knows how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic name is empty")]
    Empty,
    #[error("topic `{0}` does not start with `onex.`")]
    MissingPrefix(String),
    #[error("topic `{topic}` has {found} segments, expected 5")]
    SegmentCount { topic: String, found: usize },
    #[error("topic `{topic}` has an empty segment")]
    EmptySegment { topic: String },
    #[error(
        "topic `{topic}` segment `{segment}` contains `{bad}`; only lowercase letters, digits, `_` and `-` are allowed"
    )]
    InvalidCharacter { topic: String, segment: String, bad: char },
    #[error("topic `{topic}` segment `{segment}` must start with a lowercase letter or digit")]
    InvalidSegmentStart { topic: String, segment: String },
    #[error("topic `{topic}` has direction `{found}`; it must be `cmd` or `evt` (or `dlq` for a dead-letter topic)")]
    InvalidDirection { topic: String, found: String },
    #[error("topic `{topic}` has kind `{found}`; it must be one of cmd, evt, intent, dlq, snapshot")]
    InvalidKind { topic: String, found: String },
    #[error("topic `{topic}` has version `{found}`; it must be `v` followed by digits, e.g. `v1`")]
    InvalidVersion { topic: String, found: String },
    #[error("topic `{topic}` uses the reserved namespace `onex.{namespace}`")]
    Reserved { topic: String, namespace: String },
}

impl TopicError {
    /// A one-line suggestion for fixing the topic, shown under the error.
    pub fn hint(&self, convention: TopicConvention) -> String {
        match self {
            Self::Reserved { .. } => format!(
                "`{}` are reserved for the runtime; use your tenant name, e.g. `onex.acme.orders.cmd.v1`",
                RESERVED_NAMESPACES.join("`, `")
            ),
            Self::InvalidCharacter { segment, .. } => {
                let fixed: String = segment
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_lowercase()
                        } else if c == '_' || c == '-' {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect();
                format!("write the segment as `{fixed}`")
            }
            _ => format!("topics follow `{}`, e.g. `{}`", convention.pattern(), example(convention)),
        }
    }
}

fn example(convention: TopicConvention) -> &'static str {
    match convention {
        TopicConvention::TenantDomain => "onex.acme.orders.cmd.v1",
        TopicConvention::OnexKind => "onex.cmd.acme-orders.order-placed.v1",
    }
}

/// A validated topic name. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(Arc<str>);

impl TopicName {
    /// Parses `raw` under `convention`.
    ///
    /// # Errors
    /// Returns the first rule `raw` breaks; every [`TopicError`] has a [`TopicError::hint`].
    pub fn parse(raw: &str, convention: TopicConvention) -> Result<Self, TopicError> {
        if raw.is_empty() {
            return Err(TopicError::Empty);
        }
        let topic = || raw.to_owned();
        let segments: Vec<&str> = raw.split('.').collect();
        if segments[0] != "onex" {
            return Err(TopicError::MissingPrefix(topic()));
        }
        if segments.iter().any(|s| s.is_empty()) {
            return Err(TopicError::EmptySegment { topic: topic() });
        }
        if let Some(ns) = segments.get(1) {
            if RESERVED_NAMESPACES.contains(ns) {
                return Err(TopicError::Reserved { topic: topic(), namespace: (*ns).to_owned() });
            }
        }
        if segments.len() != 5 {
            return Err(TopicError::SegmentCount { topic: topic(), found: segments.len() });
        }
        for segment in &segments[1..4] {
            check_segment(raw, segment)?;
        }
        let (kind_segment, kind_ok) = match convention {
            TopicConvention::TenantDomain => (segments[3], matches!(segments[3], "cmd" | "evt" | "dlq")),
            TopicConvention::OnexKind => (segments[1], parse_kind(segments[1]).is_some()),
        };
        if !kind_ok {
            let found = kind_segment.to_owned();
            return Err(match convention {
                TopicConvention::TenantDomain => TopicError::InvalidDirection { topic: topic(), found },
                TopicConvention::OnexKind => TopicError::InvalidKind { topic: topic(), found },
            });
        }
        let version = segments[4];
        let digits = version.strip_prefix('v').unwrap_or("");
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TopicError::InvalidVersion { topic: topic(), found: version.to_owned() });
        }
        Ok(Self(Arc::from(raw)))
    }

    /// The topic as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the topic carries, whichever convention it follows.
    pub fn kind(&self) -> Option<TopicKind> {
        let mut parts = self.0.split('.');
        let second = parts.nth(1)?;
        let fourth = parts.nth(1)?;
        parse_kind(fourth).or_else(|| parse_kind(second))
    }
}

fn parse_kind(s: &str) -> Option<TopicKind> {
    Some(match s {
        "cmd" => TopicKind::Cmd,
        "evt" => TopicKind::Evt,
        "intent" => TopicKind::Intent,
        "dlq" => TopicKind::Dlq,
        "snapshot" => TopicKind::Snapshot,
        _ => return None,
    })
}

fn check_segment(topic: &str, segment: &str) -> Result<(), TopicError> {
    if let Some(bad) =
        segment.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return Err(TopicError::InvalidCharacter { topic: topic.to_owned(), segment: segment.to_owned(), bad });
    }
    if !segment.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err(TopicError::InvalidSegmentStart { topic: topic.to_owned(), segment: segment.to_owned() });
    }
    Ok(())
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicName({})", self.0)
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Parses under the default (seed 000) convention.
impl FromStr for TopicName {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s, TopicConvention::default())
    }
}

impl Serialize for TopicName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Deserializes under the default convention; use [`TopicName::parse`] for the other one.
impl<'de> Deserialize<'de> for TopicName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seed(raw: &str) -> Result<TopicName, TopicError> {
        TopicName::parse(raw, TopicConvention::TenantDomain)
    }

    // Every row of seed 000's "Topic Naming Examples" table.
    #[test]
    fn seed_table_valid_rows_parse() {
        for raw in [
            "onex.acme.orders.cmd.v1",
            "onex.acme.orders.evt.v1",
            "onex.acme.user-service.cmd.v1",
            "onex.acme.user_service.cmd.v1",
        ] {
            assert_eq!(seed(raw).map(|t| t.as_str().to_owned()), Ok(raw.to_owned()), "{raw}");
        }
    }

    #[test]
    fn seed_table_uppercase_is_rejected() {
        assert!(matches!(seed("onex.ACME.orders.cmd.v1"), Err(TopicError::InvalidCharacter { bad: 'A', .. })));
    }

    #[test]
    fn seed_table_direction_must_be_cmd_or_evt() {
        assert!(matches!(seed("onex.acme.orders.command.v1"), Err(TopicError::InvalidDirection { .. })));
        assert!(matches!(seed("onex.acme.orders.query.v1"), Err(TopicError::InvalidDirection { .. })));
    }

    #[test]
    fn seed_table_version_needs_v_prefix() {
        assert!(matches!(seed("onex.acme.orders.cmd.1"), Err(TopicError::InvalidVersion { .. })));
        assert!(matches!(seed("onex.acme.orders.cmd.vx"), Err(TopicError::InvalidVersion { .. })));
    }

    #[test]
    fn seed_table_missing_version_is_rejected() {
        assert!(matches!(seed("onex.acme.orders.cmd"), Err(TopicError::SegmentCount { found: 4, .. })));
    }

    #[test]
    fn seed_table_missing_prefix_is_rejected() {
        assert!(matches!(seed("acme.orders.cmd.v1"), Err(TopicError::MissingPrefix(_))));
    }

    #[test]
    fn seed_table_empty_segment_is_rejected() {
        assert!(matches!(seed("onex..orders.cmd.v1"), Err(TopicError::EmptySegment { .. })));
    }

    #[test]
    fn every_reserved_namespace_is_rejected() {
        for ns in RESERVED_NAMESPACES {
            let raw = format!("onex.{ns}.debug.evt.v1");
            assert!(matches!(seed(&raw), Err(TopicError::Reserved { .. })), "{raw}");
        }
        // Seed table row: `onex.internal.debug.evt.v1`.
        assert!(matches!(seed("onex.internal.debug.evt.v1"), Err(TopicError::Reserved { .. })));
    }

    #[test]
    fn dlq_direction_is_accepted_for_dead_letter_topics() {
        assert_eq!(seed("onex.acme.orders.dlq.v1").map(|t| t.kind()), Ok(Some(TopicKind::Dlq)));
    }

    #[test]
    fn onex_kind_convention_parses_real_onex_topics() {
        for raw in [
            "onex.cmd.omnibase-infra.llm-inference-request.v1",
            "onex.evt.platform.contract-verification-result.v1",
            "onex.intent.platform.runtime-tick.v1",
            "onex.dlq.omnibase-infra.router.v1",
            "onex.snapshot.platform.registry.v2",
        ] {
            assert!(TopicName::parse(raw, TopicConvention::OnexKind).is_ok(), "{raw}");
        }
        assert!(matches!(
            TopicName::parse("onex.query.platform.x.v1", TopicConvention::OnexKind),
            Err(TopicError::InvalidKind { .. })
        ));
        // The seed convention rejects the ONEX shape: `x` is not a direction.
        assert!(seed("onex.cmd.platform.x.v1").is_err());
    }

    #[test]
    fn kind_is_read_from_either_convention() {
        assert_eq!(seed("onex.acme.orders.evt.v1").ok().and_then(|t| t.kind()), Some(TopicKind::Evt));
        let t = TopicName::parse("onex.intent.platform.tick.v1", TopicConvention::OnexKind).ok();
        assert_eq!(t.and_then(|t| t.kind()), Some(TopicKind::Intent));
    }

    #[test]
    fn every_error_has_a_hint_with_an_example_or_fix() {
        let err = seed("onex.acme.Orders!.cmd.v1").err();
        let hint = err.map(|e| e.hint(TopicConvention::TenantDomain)).unwrap_or_default();
        assert!(hint.contains("orders-"), "{hint}");
        let err = seed("acme").err().map(|e| e.hint(TopicConvention::TenantDomain)).unwrap_or_default();
        assert!(err.contains("onex.acme.orders.cmd.v1"), "{err}");
    }

    proptest! {
        #[test]
        fn well_formed_topics_round_trip(
            tenant in "[a-z0-9][a-z0-9_-]{0,12}",
            domain in "[a-z0-9][a-z0-9_-]{0,12}",
            dir in prop::sample::select(vec!["cmd", "evt"]),
            v in 0u32..10_000,
        ) {
            prop_assume!(!RESERVED_NAMESPACES.contains(&tenant.as_str()));
            let raw = format!("onex.{tenant}.{domain}.{dir}.v{v}");
            let topic = seed(&raw);
            prop_assert_eq!(topic.as_ref().map(|t| t.as_str()), Ok(raw.as_str()));
            let json = serde_json::to_string(&topic.ok()).unwrap_or_default();
            let back: Option<TopicName> = serde_json::from_str(&json).ok().flatten();
            prop_assert_eq!(back.map(|t| t.to_string()), Some(raw));
        }

        #[test]
        fn arbitrary_strings_never_panic(raw in ".*") {
            let _ = seed(&raw);
            let _ = TopicName::parse(&raw, TopicConvention::OnexKind);
        }

        #[test]
        fn accepted_topics_satisfy_the_seed_regex(raw in "onex\\.[a-zA-Z0-9_.-]{0,30}") {
            if let Ok(t) = seed(&raw) {
                let parts: Vec<&str> = t.as_str().split('.').collect();
                prop_assert_eq!(parts.len(), 5);
                prop_assert!(parts[1..4].iter().all(|s| s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')));
                prop_assert!(parts[4].starts_with('v'));
            }
        }
    }
}
