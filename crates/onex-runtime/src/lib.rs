//! The onex runtime host.
//!
//! [`RuntimeHost`] consumes command envelopes from a bus, routes each to
//! the node that owns it, and publishes one response (or dead letter) per
//! envelope, acking its input only after that. Build it from a contract,
//! from code, or both, with [`RuntimeHost::builder`].

mod activity;
mod admin;
mod builder;
mod client;
mod dispatch;
pub mod handler_config;
mod host;
pub mod metrics;
pub mod node;
pub mod secrets;
mod sources;
mod status;
pub mod telemetry;
mod wiring;

pub use activity::{InFlight, NodeCounts, Phase, RecentDeadLetter, RecentOutcome};
pub use admin::AdminServer;
pub use builder::{NodeOptions, RuntimeHostBuilder};
pub use client::{Client, Outcome, Sender};
pub use handler_config::HandlerConfigResolver;
pub use host::{DEFAULT_SHUTDOWN_GRACE, HostError, HostStats, RunningHost, RuntimeHost, ShutdownReport};
pub use node::{ComputeNode, EffectNode, Node};
pub use secrets::{SecretRef, SecretResolver};
pub use sources::StdSources;
pub use status::{BusStatus, HandlerStatus, NodeStatus, RuntimeStatus};
#[cfg(feature = "kafka")]
pub use wiring::{KafkaSettings, kafka_settings};
