//! Errors of handlers and of the resilience layers around them.
//!
//! Layers keep errors typed (no boxed `dyn Error` to downcast): each refusal
//! by policy is its own variant, and the retry layer wraps the final error
//! with the number of attempts, so the runtime can write the code, the class
//! and the attempt count into the error envelope and the dead-letter record
//! from this one value ([`HandlerError::code`], [`HandlerError::class`],
//! [`HandlerError::attempts`], [`HandlerError::dead_letter_cause`]).

use std::time::Duration;

use onex_core::contract::DeadLetterCause;
use onex_core::{ErrorClass, ErrorCode, RuntimeError, Timestamp};

/// What can go wrong inside a handler, or in the layers in front of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    #[error("handler `{handler_type}` does not support operation `{operation}`; it supports: {}", supported.join(", "))]
    UnsupportedOperation { handler_type: String, operation: String, supported: Vec<String> },
    #[error("{message}")]
    Failed { class: ErrorClass, message: String },
    /// A transient failure where the other side said when to try again (an HTTP
    /// `Retry-After` on a 429 or 503). The retry layer waits at least
    /// `retry_after` before the next attempt, capped by the policy's
    /// `max_delay` and the deadline. A variant of its own rather than a field
    /// of `Failed`, so the many `Failed { class, message }` literals stay valid.
    #[error("{message} (retry after {} ms)", retry_after.as_millis())]
    RetryLater { message: String, retry_after: Duration },
    #[error("handler `{handler_type}` is misconfigured: {message}")]
    Config { handler_type: String, message: String },
    /// The envelope's deadline passed (or would pass before the next retry); no further attempt was made.
    #[error("deadline {deadline} exceeded")]
    DeadlineExceeded { deadline: Timestamp },
    /// The binding's circuit breaker is open (or half-open with every probe slot taken).
    #[error("circuit breaker of handler `{handler}` is open")]
    CircuitOpen { handler: String },
    /// The binding's rate limit had no token in time.
    #[error("rate limit of handler `{handler}` refused the call")]
    RateLimited { handler: String },
    /// One attempt took longer than its timeout and was abandoned.
    #[error("attempt timed out after {} ms", after.as_millis())]
    Timeout { after: Duration },
    /// Every attempt failed with a transient error and no retry is left.
    #[error("{last} (gave up after {attempts} attempts)")]
    RetriesExhausted { attempts: u32, last: Box<HandlerError> },
    /// Retrying stopped early: attempt `attempts` failed in a way that is not
    /// retried (`cause`: a permanent error, an open breaker), or the deadline
    /// left no time for another attempt (`cause`: [`HandlerError::DeadlineExceeded`]).
    #[error("{cause} (stopped after {attempts} attempts)")]
    RetryStopped { attempts: u32, cause: Box<HandlerError> },
}

impl HandlerError {
    /// Whether, and how, the caller may retry.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::UnsupportedOperation { .. } | Self::Config { .. } => ErrorClass::Permanent,
            Self::Failed { class, .. } => *class,
            Self::RetryLater { .. } => ErrorClass::Transient,
            Self::DeadlineExceeded { .. } | Self::CircuitOpen { .. } | Self::RateLimited { .. } => ErrorClass::Rejected,
            Self::Timeout { .. } => ErrorClass::Transient,
            Self::RetriesExhausted { last: inner, .. } | Self::RetryStopped { cause: inner, .. } => inner.class(),
        }
    }

    /// The taxonomy code this error maps to.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnsupportedOperation { .. } => ErrorCode::HandlerNotFound,
            Self::Failed { .. } | Self::RetryLater { .. } => ErrorCode::HandlerExecution,
            Self::Config { .. } => ErrorCode::ProtocolConfiguration,
            Self::DeadlineExceeded { .. } => ErrorCode::DeadlineExceeded,
            Self::CircuitOpen { .. } => ErrorCode::CircuitOpen,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Timeout { .. } => ErrorCode::Timeout,
            Self::RetriesExhausted { last: inner, .. } | Self::RetryStopped { cause: inner, .. } => inner.code(),
        }
    }

    /// Attempts made before this error was returned: what the runtime writes
    /// into the error envelope's `retry_count` (minus one) and the DLQ record.
    ///
    /// `0` for a deadline that had already passed when the call arrived (the
    /// handler was never called); the retry layer's count when it wrapped the
    /// error; otherwise `1`, as the retry layer returns a non-retryable
    /// first-attempt error unwrapped.
    pub fn attempts(&self) -> u32 {
        match self {
            Self::RetriesExhausted { attempts, .. } | Self::RetryStopped { attempts, .. } => *attempts,
            Self::DeadlineExceeded { .. } => 0,
            _ => 1,
        }
    }

    /// How long the failing side asked callers to wait before trying again,
    /// when it said so ([`HandlerError::RetryLater`]).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RetryLater { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The error of the last attempt, without the retry layer's wrapping.
    pub fn root(&self) -> &Self {
        match self {
            Self::RetriesExhausted { last: inner, .. } | Self::RetryStopped { cause: inner, .. } => inner.root(),
            other => other,
        }
    }

    /// Which `dead_letter_on` entry this failure matches; the runtime
    /// dead-letters the envelope when the binding's policy
    /// [applies to](onex_core::contract::DeadLetterPolicy::applies_to) it.
    pub fn dead_letter_cause(&self) -> DeadLetterCause {
        match self {
            Self::RetryStopped { cause, .. } => cause.dead_letter_cause(),
            Self::DeadlineExceeded { .. } => DeadLetterCause::DeadlineExceeded,
            Self::CircuitOpen { .. } => DeadLetterCause::CircuitOpen,
            Self::RateLimited { .. } => DeadLetterCause::RateLimited,
            // A transient error that reaches the runtime is one the retry budget did not absorb.
            other => match other.class() {
                ErrorClass::Transient => DeadLetterCause::RetriesExhausted,
                ErrorClass::Permanent => DeadLetterCause::Permanent,
                ErrorClass::Conflict => DeadLetterCause::Conflict,
                ErrorClass::Rejected => DeadLetterCause::Rejected,
            },
        }
    }

    /// Converts to the runtime error carried in error envelopes.
    pub fn to_runtime_error(&self, handler_type: &str, operation: &str) -> RuntimeError {
        RuntimeError::new(self.code(), self.to_string())
            .with_class(self.class())
            .with_handler_type(handler_type)
            .with_operation(operation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> HandlerError {
        HandlerError::Failed { class: ErrorClass::Transient, message: "connection reset".into() }
    }

    #[test]
    fn policy_refusals_are_rejected_with_their_own_codes() {
        let cases = [
            (HandlerError::DeadlineExceeded { deadline: Timestamp::UNIX_EPOCH }, ErrorCode::DeadlineExceeded),
            (HandlerError::CircuitOpen { handler: "api".into() }, ErrorCode::CircuitOpen),
            (HandlerError::RateLimited { handler: "api".into() }, ErrorCode::RateLimited),
        ];
        for (e, code) in cases {
            assert_eq!((e.class(), e.code()), (ErrorClass::Rejected, code), "{e}");
        }
        let t = HandlerError::Timeout { after: Duration::from_millis(250) };
        assert_eq!((t.class(), t.code()), (ErrorClass::Transient, ErrorCode::Timeout));
        assert_eq!(t.to_string(), "attempt timed out after 250 ms");
    }

    #[test]
    fn retry_wrappers_carry_attempts_and_delegate_class_and_code() {
        let e = HandlerError::RetriesExhausted { attempts: 4, last: Box::new(transient()) };
        assert_eq!((e.attempts(), e.class(), e.code()), (4, ErrorClass::Transient, ErrorCode::HandlerExecution));
        assert_eq!(e.to_string(), "connection reset (gave up after 4 attempts)");
        assert_eq!(e.root(), &transient());
        assert_eq!(e.dead_letter_cause(), DeadLetterCause::RetriesExhausted);

        let open = HandlerError::CircuitOpen { handler: "api".into() };
        let e = HandlerError::RetryStopped { attempts: 2, cause: Box::new(open.clone()) };
        assert_eq!((e.attempts(), e.code()), (2, ErrorCode::CircuitOpen));
        assert_eq!(e.dead_letter_cause(), DeadLetterCause::CircuitOpen);
        assert_eq!(e.root(), &open);
    }

    #[test]
    fn retry_later_is_transient_and_carries_its_hint() {
        let e = HandlerError::RetryLater { message: "http 429".into(), retry_after: Duration::from_secs(2) };
        assert_eq!((e.class(), e.code()), (ErrorClass::Transient, ErrorCode::HandlerExecution));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(e.to_string(), "http 429 (retry after 2000 ms)");
        assert_eq!(transient().retry_after(), None);
    }

    #[test]
    fn attempts_default_to_one_and_to_zero_for_an_expired_deadline() {
        assert_eq!(transient().attempts(), 1);
        assert_eq!(HandlerError::DeadlineExceeded { deadline: Timestamp::UNIX_EPOCH }.attempts(), 0);
    }

    #[test]
    fn dead_letter_causes_follow_the_class() {
        let failed = |class| HandlerError::Failed { class, message: "x".into() };
        assert_eq!(failed(ErrorClass::Permanent).dead_letter_cause(), DeadLetterCause::Permanent);
        assert_eq!(failed(ErrorClass::Conflict).dead_letter_cause(), DeadLetterCause::Conflict);
        assert_eq!(failed(ErrorClass::Rejected).dead_letter_cause(), DeadLetterCause::Rejected);
    }
}
