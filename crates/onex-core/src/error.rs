//! The error taxonomy shared by every layer.
//!
//! Each failure has a stable [`ErrorCode`] (what happened, written into error
//! envelopes and metrics) and an [`ErrorClass`] (what to do about it). Only
//! [`ErrorClass::Transient`] errors are ever retried. Crates keep their own
//! `thiserror` enums and convert to a [`RuntimeError`] at the edge where an
//! error envelope is built.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// May succeed if tried again later (timeouts, connection loss, 5xx, 429).
    Transient,
    /// Will fail the same way every time (bad input, missing handler, 4xx).
    Permanent,
    /// Lost a race with another writer (version conflict); retry at a higher level.
    Conflict,
    /// Refused by policy before doing any work (rate limit, open breaker, expired deadline).
    Rejected,
}

impl ErrorClass {
    /// Whether the retry layer may try again.
    pub const fn is_retryable(self) -> bool {
        matches!(self, Self::Transient)
    }

    /// The lowercase name, as used in metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Permanent => "permanent",
            Self::Conflict => "conflict",
            Self::Rejected => "rejected",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! error_codes {
    ($($variant:ident => $code:literal, $class:ident, $doc:literal;)*) => {
        /// A stable, machine-readable error code (`SCREAMING_SNAKE_CASE` on the wire).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum ErrorCode {
            $(#[doc = $doc] $variant,)*
        }

        impl ErrorCode {
            /// Every code, for documentation and exhaustive tests.
            pub const ALL: &'static [ErrorCode] = &[$(Self::$variant,)*];

            /// The wire spelling, e.g. `HANDLER_NOT_FOUND`.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $code,)* }
            }

            /// The class an error with this code has unless its source says otherwise.
            pub const fn default_class(self) -> ErrorClass {
                match self { $(Self::$variant => ErrorClass::$class,)* }
            }
        }
    };
}

error_codes! {
    HandlerNotFound => "HANDLER_NOT_FOUND", Permanent, "No handler is bound for the envelope's operation or handler type.";
    NodeNotFound => "NODE_NOT_FOUND", Permanent, "The envelope names a target node this runtime does not host.";
    EnvelopeValidation => "ENVELOPE_VALIDATION", Permanent, "The message is not a valid envelope.";
    ProtocolConfiguration => "PROTOCOL_CONFIGURATION", Permanent, "A handler or bus is misconfigured.";
    SecretResolution => "SECRET_RESOLUTION", Permanent, "A secret reference could not be resolved.";
    HandlerExecution => "HANDLER_EXECUTION", Transient, "The handler ran and failed.";
    ComputeFailed => "COMPUTE_FAILED", Permanent, "A COMPUTE node's expression failed on the payload.";
    Timeout => "TIMEOUT", Transient, "An attempt took longer than its timeout.";
    DeadlineExceeded => "DEADLINE_EXCEEDED", Rejected, "The envelope's deadline passed before it could be processed.";
    RateLimited => "RATE_LIMITED", Rejected, "The handler's rate limit refused the call.";
    CircuitOpen => "CIRCUIT_OPEN", Rejected, "The handler's circuit breaker is open.";
    Conflict => "CONFLICT", Conflict, "A concurrent write won; retry at a higher level.";
    WorkerRequired => "WORKER_REQUIRED", Permanent, "The operation is implemented by a Python class that needs an external worker.";
    ShuttingDown => "SHUTTING_DOWN", Transient, "The runtime is shutting down and did not start the work.";
    Internal => "INTERNAL", Permanent, "A bug in onex; please report it.";
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error at the runtime level, with the context every error carries.
///
/// This is what error envelopes are built from. The message must never
/// contain a secret value: sources redact before converting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RuntimeError {
    pub code: ErrorCode,
    pub class: ErrorClass,
    pub message: String,
    pub handler_type: Option<String>,
    pub operation: Option<String>,
    pub correlation_id: Option<uuid::Uuid>,
    /// Handler attempts made before giving up: 0 when the work never started
    /// (expired deadline, routing error), 1 + retries otherwise.
    pub attempts: u32,
}

impl RuntimeError {
    /// An error with `code`'s default class and no context yet.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            class: code.default_class(),
            message: message.into(),
            handler_type: None,
            operation: None,
            correlation_id: None,
            attempts: 1,
        }
    }

    /// Records how many attempts were made.
    #[must_use]
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// Overrides the class (a handler knows whether its failure is transient).
    #[must_use]
    pub fn with_class(mut self, class: ErrorClass) -> Self {
        self.class = class;
        self
    }

    /// Adds the handler type.
    #[must_use]
    pub fn with_handler_type(mut self, handler_type: impl Into<String>) -> Self {
        self.handler_type = Some(handler_type.into());
        self
    }

    /// Adds the operation.
    #[must_use]
    pub fn with_operation(mut self, operation: impl Into<String>) -> Self {
        self.operation = Some(operation.into());
        self
    }

    /// Adds the correlation id.
    #[must_use]
    pub fn with_correlation_id(mut self, id: uuid::Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_errors_are_retryable() {
        assert!(ErrorClass::Transient.is_retryable());
        for class in [ErrorClass::Permanent, ErrorClass::Conflict, ErrorClass::Rejected] {
            assert!(!class.is_retryable(), "{class}");
        }
    }

    #[test]
    fn every_code_has_a_wire_name_and_a_class() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let _ = code.default_class();
        }
        assert_eq!(ErrorCode::HandlerNotFound.default_class(), ErrorClass::Permanent);
        assert_eq!(ErrorCode::Timeout.default_class(), ErrorClass::Transient);
        assert_eq!(ErrorCode::CircuitOpen.default_class(), ErrorClass::Rejected);
        assert_eq!(ErrorCode::Conflict.default_class(), ErrorClass::Conflict);
    }

    #[test]
    fn runtime_error_carries_context() {
        let id = uuid::Uuid::from_u128(7);
        let e = RuntimeError::new(ErrorCode::HandlerExecution, "connection refused")
            .with_class(ErrorClass::Transient)
            .with_handler_type("http")
            .with_operation("http.get")
            .with_correlation_id(id);
        assert_eq!(e.to_string(), "HANDLER_EXECUTION: connection refused");
        assert_eq!(e.handler_type.as_deref(), Some("http"));
        assert_eq!(e.operation.as_deref(), Some("http.get"));
        assert_eq!(e.correlation_id, Some(id));
    }
}
