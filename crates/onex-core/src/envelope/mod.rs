//! The envelope: one command, event or intent on the bus.
//!
//! Envelopes are JSON on the wire. Parsing is tolerant where real producers
//! differ (`envelope_timestamp` is accepted for `timestamp`, categories in
//! either case) and lossless: fields onex does not know are kept in
//! [`Envelope::extra`] / [`Metadata::extra`] and written back out, so a
//! runtime in the middle of a pipeline never strips another system's data.
//!
//! Responses are built only through [`Envelope::success_response`] and
//! [`Envelope::error_response`], which enforce the id rules: a new
//! `envelope_id`, the request's `correlation_id`, and `causation_id` set to
//! the request's `envelope_id`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::clock::{Clock, Timestamp};
use crate::error::{ErrorClass, ErrorCode, RuntimeError};
use crate::id::IdGen;

/// The envelope format version onex writes.
pub const ENVELOPE_VERSION: &str = "1.0";

macro_rules! uuid_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

uuid_newtype!(
    /// Identifies one envelope. UUID v7 when onex creates it.
    EnvelopeId
);
uuid_newtype!(
    /// Ties together every envelope caused by one original request.
    CorrelationId
);

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string.
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
            /// The string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(
    /// A node's slug, e.g. `greeter`.
    NodeId
);
string_newtype!(
    /// A dotted operation name, e.g. `http.get`, `local.echo`, `register_node`.
    Operation
);

impl Operation {
    /// The part before the first dot (`http` for `http.get`), if there is a dot.
    pub fn namespace(&self) -> Option<&str> {
        self.0.split_once('.').map(|(ns, _)| ns)
    }
}

/// What an envelope asks for or reports (seed 004: PROJECTION is not a category).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// An instruction to do something.
    #[default]
    #[serde(alias = "COMMAND")]
    Command,
    /// A fact that happened.
    #[serde(alias = "EVENT")]
    Event,
    /// A wish that needs interpretation.
    #[serde(alias = "INTENT")]
    Intent,
}

/// Message priority: 1–10 (real ONEX envelopes) or a name (seed 004 headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Priority {
    Level(u8),
    Named(PriorityName),
}

/// Named priorities of seed 004.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PriorityName {
    Low,
    Normal,
    High,
    Critical,
}

/// Envelope metadata: trace context and delivery hints (seed 004's header list).
///
/// `Deserialize` is implemented in `de.rs`: unknown fields go to `extra`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Metadata {
    /// W3C trace context, e.g. `00-<trace-id>-<span-id>-01`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// W3C trace state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Free-form string headers.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Entities sharing a key keep their order; falls back to correlation_id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<String>,
    /// How many times this envelope's work has been retried.
    #[serde(skip_serializing_if = "is_zero")]
    pub retry_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Absolute time after which the work is pointless.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// Metadata fields onex does not interpret, preserved as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_version() -> String {
    ENVELOPE_VERSION.to_owned()
}

/// The error part of an error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Whether sending the same command again might succeed.
    pub retryable: bool,
    pub class: ErrorClass,
    /// Handler attempts made (1 + retries; 0 when the work never started).
    #[serde(default)]
    pub attempts: u32,
}

/// One message on the bus.
///
/// `Deserialize` is implemented in `de.rs`: unknown fields go to `extra`,
/// `envelope_timestamp` is read as `timestamp`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    pub envelope_id: EnvelopeId,
    pub envelope_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<CorrelationId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<EnvelopeId>,
    pub category: Category,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_node: Option<NodeId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_node: Option<NodeId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    pub payload: Value,
    pub metadata: Metadata,
    // `envelope_timestamp` is the name real ONEX envelopes use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    #[serde(skip_serializing_if = "is_false")]
    pub is_response: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<EnvelopeError>,
    /// Top-level fields onex does not interpret, preserved as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Why bytes are not an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid envelope at line {line}, column {column}: {reason}")]
pub struct EnvelopeParseError {
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

impl EnvelopeParseError {
    /// How to fix the message, for DLQ records and CLI output.
    pub fn hint(&self) -> &'static str {
        "an envelope is a JSON object with at least `envelope_id` (a UUID); see docs/envelopes.md"
    }
}

impl Envelope {
    /// A new command with a fresh id, its own correlation id, and the current time.
    pub fn command(ids: &dyn IdGen, clock: &dyn Clock, operation: impl Into<Operation>, payload: Value) -> Self {
        let id = ids.next_id();
        Self {
            envelope_id: EnvelopeId(id),
            envelope_version: default_version(),
            correlation_id: Some(CorrelationId(id)),
            causation_id: None,
            category: Category::Command,
            source_node: None,
            target_node: None,
            handler_type: None,
            operation: Some(operation.into()),
            payload,
            metadata: Metadata::default(),
            timestamp: Some(clock.now()),
            is_response: false,
            success: None,
            error: None,
            extra: Map::new(),
        }
    }

    /// Parses one envelope from JSON bytes.
    ///
    /// # Errors
    /// Returns where the input stops being an envelope and why.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EnvelopeParseError> {
        serde_json::from_slice(bytes).map_err(|e| EnvelopeParseError {
            line: e.line(),
            column: e.column(),
            reason: strip_position(&e.to_string()),
        })
    }

    /// Serializes to JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a type with string keys into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The correlation id, or the envelope's own id for a first request without one.
    pub fn correlation(&self) -> CorrelationId {
        self.correlation_id.unwrap_or(CorrelationId(self.envelope_id.0))
    }

    /// The key that keeps an entity's envelopes in order: `metadata.partition_key`,
    /// else the correlation id.
    pub fn partition_key(&self) -> String {
        match &self.metadata.partition_key {
            Some(k) => k.clone(),
            None => self.correlation().to_string(),
        }
    }

    /// Transport headers for buses that carry them (Kafka), named as seed 004's
    /// `ModelEventHeaders`, so consumers can route and trace without parsing the
    /// payload. The envelope JSON stays the source of truth.
    pub fn transport_headers(&self) -> Vec<(&'static str, String)> {
        let mut h = Vec::with_capacity(12);
        h.push(("correlation_id", self.correlation().to_string()));
        h.push(("message_id", self.envelope_id.to_string()));
        if let Some(t) = &self.timestamp {
            h.push(("timestamp", t.to_string()));
        }
        if let Some(s) = &self.source_node {
            h.push(("source", s.to_string()));
        }
        if let Some(op) = &self.operation {
            h.push(("event_type", op.to_string()));
        }
        h.push(("content_type", "application/json".to_owned()));
        h.push(("schema_version", self.envelope_version.clone()));
        if let Some(t) = &self.target_node {
            h.push(("destination", t.to_string()));
        }
        let m = &self.metadata;
        let optional = [
            ("traceparent", &m.traceparent),
            ("trace_id", &m.trace_id),
            ("span_id", &m.span_id),
            ("parent_span_id", &m.parent_span_id),
            ("partition_key", &m.partition_key),
        ];
        h.extend(optional.into_iter().filter_map(|(k, v)| v.clone().map(|v| (k, v))));
        if let Some(p) = m.priority {
            h.push((
                "priority",
                match p {
                    Priority::Level(n) => n.to_string(),
                    Priority::Named(n) => format!("{n:?}").to_ascii_lowercase(),
                },
            ));
        }
        h.push(("retry_count", m.retry_count.to_string()));
        if let Some(n) = m.max_retries {
            h.push(("max_retries", n.to_string()));
        }
        if let Some(n) = m.ttl_seconds {
            h.push(("ttl_seconds", n.to_string()));
        }
        h
    }

    /// A successful response to this envelope, from node `source`.
    pub fn success_response(
        &self,
        ids: &dyn IdGen,
        clock: &dyn Clock,
        source: Option<&NodeId>,
        payload: Value,
    ) -> Self {
        let mut r = self.response_skeleton(ids, clock, source, payload);
        r.success = Some(true);
        r
    }

    /// An error response to this envelope, from node `source`.
    pub fn error_response(
        &self,
        ids: &dyn IdGen,
        clock: &dyn Clock,
        source: Option<&NodeId>,
        err: &RuntimeError,
    ) -> Self {
        let mut r = self.response_skeleton(ids, clock, source, Value::Null);
        r.success = Some(false);
        r.error = Some(EnvelopeError {
            code: err.code,
            message: err.message.clone(),
            handler_type: err.handler_type.clone().or_else(|| self.handler_type.clone()),
            operation: err.operation.clone().or_else(|| self.operation.as_ref().map(|o| o.0.clone())),
            retryable: err.class.is_retryable(),
            class: err.class,
            attempts: err.attempts,
        });
        r
    }

    fn response_skeleton(&self, ids: &dyn IdGen, clock: &dyn Clock, source: Option<&NodeId>, payload: Value) -> Self {
        let mut metadata = self.metadata.clone();
        metadata.retry_count = 0;
        Self {
            envelope_id: EnvelopeId(ids.next_id()),
            envelope_version: default_version(),
            correlation_id: Some(self.correlation()),
            causation_id: Some(self.envelope_id),
            category: Category::Event,
            source_node: source.cloned().or_else(|| self.target_node.clone()),
            target_node: self.source_node.clone(),
            handler_type: self.handler_type.clone(),
            operation: self.operation.clone(),
            payload,
            metadata,
            timestamp: Some(clock.now()),
            is_response: true,
            success: None,
            error: None,
            extra: Map::new(),
        }
    }
}

// serde_json appends " at line L column C"; we report those as fields.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

mod de;

#[cfg(test)]
mod tests;
