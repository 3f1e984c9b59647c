//! Names of span and log fields, in one place so every crate spells them alike.

pub const RUNTIME_ID: &str = "runtime_id";
pub const NODE_ID: &str = "node_id";
pub const ENVELOPE_ID: &str = "envelope_id";
pub const CORRELATION_ID: &str = "correlation_id";
pub const CAUSATION_ID: &str = "causation_id";
pub const HANDLER_TYPE: &str = "handler_type";
pub const OPERATION: &str = "operation";
pub const TOPIC: &str = "topic";
pub const PARTITION: &str = "partition";
pub const OFFSET: &str = "offset";
pub const ATTEMPT: &str = "attempt";
/// Attempts a handler call took (1 + retries), on the `handler.call` span.
pub const ATTEMPTS: &str = "attempts";
/// The W3C trace id (32 hex digits) an envelope is processed in.
pub const TRACE_ID: &str = "trace_id";
/// The handler binding's name.
pub const HANDLER: &str = "handler";
