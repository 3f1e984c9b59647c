//! Event buses for onex.
//!
//! [`EventBus`] is the seam between the runtime and a message bus. The
//! [`memory`] backend is the embedded default: in-process, bounded, ordered
//! per partition, with consumer groups and a bounded history for inspection.

mod bus;
mod error;
pub mod memory;

pub use bus::{BusHealth, ConsumerGroup, Delivery, EventBus, Message, Receipt, Subscription};
pub use error::BusError;
pub use memory::{MemoryBus, MemoryBusConfig};
