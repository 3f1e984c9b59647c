//! Event buses for onex.
//!
//! [`EventBus`] is the seam between the runtime and a message bus. The
//! [`memory`] backend is the embedded default: in-process, bounded, ordered
//! per partition, with consumer groups and a bounded history for inspection.
//! The [`kafka`] backend (cargo feature `kafka`) talks to a Kafka-protocol broker.

mod bus;
mod error;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod memory;

pub use bus::{BusHealth, ConsumerGroup, Delivery, EventBus, Message, PartitionLag, Receipt, Subscription};
pub use error::BusError;
pub use memory::{MemoryBus, MemoryBusConfig};
