//! Handlers: the code that talks to the outside world for EFFECT nodes.
//!
//! [`Handler`] is the seam; each handler type lives in its own module with
//! its config beside it. This version ships the `local` handler (echo /
//! transform / error, for development and tests) and the [`resilience`]
//! layers (deadline, retry, circuit breaker, rate limit, timeout) that wrap
//! every handler binding. The http, db, vault and consul handlers plug in
//! behind the same trait.

mod error;
mod handler;
mod internal_events;
pub mod local;
pub mod resilience;

pub use error::HandlerError;
pub use handler::{CallContext, Handler, HandlerDescription, HandlerHealth, OperationInfo};
pub use local::LocalHandler;
pub use resilience::{CallOutcome, ResilientHandler, TokioClock};
