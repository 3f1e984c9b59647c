//! Prometheus metrics of the runtime, rendered as text for `GET /metrics`.
//!
//! One recorder per process (`metrics-exporter-prometheus` without its HTTP
//! listener: the admin server serves the text), installed on first use.
//! Handles are resolved when a host is wired, so processing an envelope only
//! bumps atomics; values that already live elsewhere (resilience counters,
//! breaker states, bus lag) are read when [`crate::RunningHost::metrics_text`]
//! is called. The list of metrics is in `catalog.rs` and
//! `docs/operations.md` (Metrics).
//!
//! Metrics are process-wide: two hosts in one process that name a node or a
//! handler alike share its series (counters add up; scrape-time values keep
//! the larger counter and the last gauge written).

mod catalog;
mod handler;
mod host;
mod recorder;
#[cfg(test)]
mod tests;

pub(crate) use handler::CallMetrics;
pub(crate) use host::{HostMetrics, InFlight, Malformed};
pub use recorder::render;
