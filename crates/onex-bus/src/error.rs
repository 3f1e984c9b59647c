//! Errors of the bus layer.

use onex_core::ErrorClass;

/// What can go wrong talking to a bus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    #[error("the bus is closed")]
    Closed,
    #[error("receipt for {topic} partition {partition} offset {offset} is unknown or already acknowledged")]
    UnknownReceipt { topic: String, partition: u32, offset: u64 },
    #[error("bus backend error: {0}")]
    Backend(String),
}

impl BusError {
    /// How the runtime should treat the error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Closed => ErrorClass::Rejected,
            Self::UnknownReceipt { .. } => ErrorClass::Permanent,
            Self::Backend(_) => ErrorClass::Transient,
        }
    }
}
