//! The `local` handler: echo, transform and error operations for development.
//!
//! It talks to nothing, so it is the handler of examples, tests and
//! benchmarks. It is dev-only: it refuses to start when the runtime's
//! environment is `prod` (seed 000 lint rule), so a contract meant for
//! development cannot silently answer production traffic.

mod handler;
#[cfg(test)]
mod tests;

pub use handler::LocalHandler;
