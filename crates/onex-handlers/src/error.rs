//! Errors of handlers.

use onex_core::{ErrorClass, ErrorCode, RuntimeError};

/// What can go wrong inside a handler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    #[error("handler `{handler_type}` does not support operation `{operation}`; it supports: {}", supported.join(", "))]
    UnsupportedOperation { handler_type: String, operation: String, supported: Vec<String> },
    #[error("{message}")]
    Failed { class: ErrorClass, message: String },
    #[error("handler `{handler_type}` is misconfigured: {message}")]
    Config { handler_type: String, message: String },
}

impl HandlerError {
    /// Whether, and how, the caller may retry.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::UnsupportedOperation { .. } | Self::Config { .. } => ErrorClass::Permanent,
            Self::Failed { class, .. } => *class,
        }
    }

    /// The taxonomy code this error maps to.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnsupportedOperation { .. } => ErrorCode::HandlerNotFound,
            Self::Failed { .. } => ErrorCode::HandlerExecution,
            Self::Config { .. } => ErrorCode::ProtocolConfiguration,
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
