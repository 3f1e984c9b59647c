//! Identity, injected.
//!
//! Envelope ids are UUID v7 (time-ordered) in production. Tests use
//! [`SequentialIds`] so every id in an assertion is predictable.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

/// A source of unique ids.
pub trait IdGen: Send + Sync + fmt::Debug {
    /// A new id, never returned before by this generator.
    fn next_id(&self) -> Uuid;
}

/// UUID v7 ids from the system clock and a random tail.
#[derive(Debug, Default, Clone, Copy)]
pub struct UuidV7Ids;

impl IdGen for UuidV7Ids {
    fn next_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Ids `00000000-0000-0000-0000-000000000001`, `…2`, … For tests.
#[derive(Debug, Default)]
pub struct SequentialIds {
    next: AtomicU64,
}

impl SequentialIds {
    /// Starts at 1.
    pub fn new() -> Self {
        Self::default()
    }
}

impl IdGen for SequentialIds {
    fn next_id(&self) -> Uuid {
        Uuid::from_u128(u128::from(self.next.fetch_add(1, Ordering::Relaxed) + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_count_from_one() {
        let ids = SequentialIds::new();
        assert_eq!(ids.next_id(), Uuid::from_u128(1));
        assert_eq!(ids.next_id(), Uuid::from_u128(2));
    }

    #[test]
    fn v7_ids_are_unique_and_version_7() {
        let a = UuidV7Ids.next_id();
        let b = UuidV7Ids.next_id();
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 7);
    }
}
