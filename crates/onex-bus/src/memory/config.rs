//! Settings of the in-memory bus and their defaults.
//!
//! The contract's `event_bus.memory` block is parsed by onex-core into
//! [`MemoryBusSpec`]; this is the bus's own view of it. Defaults live here and
//! nowhere else, as named functions, so the contract model and the bus cannot
//! drift apart silently (`From<MemoryBusSpec>` is the only bridge).

use std::num::NonZeroUsize;

use onex_core::contract::MemoryBusSpec;

use super::MemoryBus;

/// How the in-memory bus sizes its topics, queues and history.
///
/// ```
/// use std::num::NonZeroUsize;
/// use onex_bus::MemoryBusConfig;
///
/// let config = MemoryBusConfig {
///     partitions: NonZeroUsize::new(8).ok_or("zero partitions")?,
///     ..MemoryBusConfig::default()
/// };
/// let bus = config.build();
/// # drop(bus);
/// # Ok::<(), &'static str>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBusConfig {
    /// Messages queued or in flight (delivered, not yet acked) per consumer
    /// group, topic and partition before publishers wait. Default 1024.
    ///
    /// This is the backpressure bound: a group that stops acking stalls
    /// publishers to that partition once this many messages are outstanding.
    pub queue_capacity: NonZeroUsize,
    /// Partitions per topic; the unit of ordering and of sharing work among
    /// the members of a group. Default 4.
    pub partitions: NonZeroUsize,
    /// Messages kept in the bus-wide history ring (all topics together) for
    /// inspection by `onex tail` and the dashboard. `0` keeps none. Default 1000.
    pub history: usize,
}

/// Default for [`MemoryBusConfig::queue_capacity`].
const fn default_queue_capacity() -> NonZeroUsize {
    non_zero(1024) // seed 004
}

/// Default for [`MemoryBusConfig::partitions`].
const fn default_partitions() -> NonZeroUsize {
    non_zero(4) // seed 004
}

/// Default for [`MemoryBusConfig::history`].
const fn default_history() -> usize {
    1000 // seed 004
}

const fn non_zero(n: usize) -> NonZeroUsize {
    // `NonZeroUsize::new(..).unwrap()` is not allowed in const fns under our
    // lints; every caller passes a literal above zero.
    match NonZeroUsize::new(n) {
        Some(n) => n,
        None => NonZeroUsize::MIN,
    }
}

impl Default for MemoryBusConfig {
    fn default() -> Self {
        Self { queue_capacity: default_queue_capacity(), partitions: default_partitions(), history: default_history() }
    }
}

impl MemoryBusConfig {
    /// Creates an empty bus with these settings.
    pub fn build(self) -> MemoryBus {
        MemoryBus::new(self)
    }
}

impl From<MemoryBusSpec> for MemoryBusConfig {
    fn from(spec: MemoryBusSpec) -> Self {
        Self { queue_capacity: spec.queue_capacity, partitions: spec.partitions, history: spec.history }
    }
}
