//! One module per subcommand.

pub mod bench;
pub mod dev;
pub mod dlq;
pub mod run;
pub mod send;
mod session;
pub mod status;
pub mod validate;
