//! The pure core of onex.
//!
//! Everything here is data and functions over data: envelopes, topic names,
//! the error taxonomy, the contract model with its validation, and the
//! `Clock` / `IdGen` traits through which time and identity are injected.
//! This crate must never depend on an async runtime or perform I/O other
//! than reading the contract files it is asked to load; CI checks that
//! `cargo tree -p onex-core -e normal` lists no tokio.

pub mod clock;
pub mod contract;
pub mod dead_letter;
pub mod envelope;
pub mod error;
pub mod fields;
pub mod id;
pub mod topic;
pub mod trace_context;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use dead_letter::DeadLetter;
pub use envelope::{Category, CorrelationId, Envelope, EnvelopeError, EnvelopeId, Metadata, NodeId, Operation};
pub use error::{ErrorClass, ErrorCode, RuntimeError};
pub use id::{IdGen, SequentialIds, UuidV7Ids};
pub use topic::{TopicConvention, TopicError, TopicKind, TopicName};
pub use trace_context::{TraceParent, TraceParentError};
