//! Handlers: the code that talks to the outside world for EFFECT nodes.
//!
//! [`Handler`] is the seam; each handler type lives in its own module with
//! its config beside it. This version ships the `local` handler (echo /
//! transform / error, for development and tests). Resilience layers and the
//! http, db, vault and consul handlers plug in behind the same trait.

mod error;
mod handler;
pub mod local;

pub use error::HandlerError;
pub use handler::{CallContext, Handler, HandlerDescription, HandlerHealth, OperationInfo};
pub use local::LocalHandler;
