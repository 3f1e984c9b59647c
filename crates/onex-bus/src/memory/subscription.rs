//! One group member's stream of deliveries.
//!
//! A subscription polls the partitions assigned to it, starting after the one
//! that delivered last so a busy partition cannot starve the others, and
//! parks on its member's `Notify` when none has anything for it. All state it
//! needs across calls lives in the queues or in `self`, never in the future,
//! which is what makes [`Subscription::next`] cancel safe. Dropping the
//! subscription leaves the group: its partitions are dealt to the remaining
//! members and its un-acked deliveries are redelivered to them.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::bus::Shared;
use super::group::{Assigned, Group, Member};
use super::queue::Take;
use super::sync::lock;
use crate::bus::{Delivery, Receipt, Subscription};
use crate::error::BusError;

pub(super) struct MemorySubscription {
    shared: Arc<Shared>,
    group: Arc<Group>,
    member: Arc<Member>,
    /// Cached copy of the member's assignment, refreshed when its generation moves.
    assignment: Arc<[Assigned]>,
    generation: u64,
    /// Where the next scan starts.
    cursor: usize,
}

/// What one pass over the assigned partitions found.
enum Scan {
    Delivered(Delivery),
    /// Something is queued for us behind a previous holder's in-flight deliveries.
    Blocked,
    Empty,
}

impl MemorySubscription {
    pub(super) fn new(shared: Arc<Shared>, group: Arc<Group>, member: Arc<Member>) -> Self {
        // Generation 0 is never current (a joined member has been assigned at
        // least once), so the first `next` loads the assignment.
        Self { shared, group, member, assignment: Arc::from([]), generation: 0, cursor: 0 }
    }

    fn refresh_assignment(&mut self) {
        if let Some((generation, assignment)) = self.member.assignment_since(self.generation) {
            self.generation = generation;
            self.assignment = assignment;
            self.cursor = 0;
        }
    }

    fn scan(&mut self) -> Scan {
        let count = self.assignment.len();
        let mut blocked = false;
        for step in 0..count {
            let index = (self.cursor + step) % count;
            let Some(assigned) = self.assignment.get(index) else {
                continue;
            };
            let Some(partition) = assigned.topic.partition(assigned.partition) else {
                continue;
            };
            let taken = lock(&partition.state).queue_mut(assigned.slot).map(|q| q.take(self.member.id()));
            match taken {
                Some(Take::Delivered { offset, message }) => {
                    self.cursor = index + 1;
                    let receipt = Receipt {
                        group: self.group.name().clone(),
                        topic: assigned.topic.name().clone(),
                        partition: assigned.partition,
                        offset,
                    };
                    return Scan::Delivered(Delivery { message, receipt });
                }
                Some(Take::Blocked) => blocked = true,
                Some(Take::Empty) | None => {}
            }
        }
        if blocked { Scan::Blocked } else { Scan::Empty }
    }
}

#[async_trait]
impl Subscription for MemorySubscription {
    /// The next delivery from this member's partitions, in offset order per
    /// partition. After [`close`](crate::EventBus::close) it keeps returning
    /// what is still queued for it, then `None`.
    ///
    /// # Cancel safety
    /// Cancel safe: a delivery is taken from its queue only in the poll that
    /// returns it, so dropping the future loses nothing.
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        loop {
            // Read before scanning: publishers check the flag under the
            // partition lock, so once we see it set, nothing can land in a
            // partition behind our scan.
            let closed = self.shared.is_closed();
            self.refresh_assignment();
            match self.scan() {
                Scan::Delivered(delivery) => return Some(Ok(delivery)),
                Scan::Empty if closed => return None,
                // Blocked messages still belong to us after close; the
                // previous holder's last ack (or drop) wakes us.
                Scan::Empty | Scan::Blocked => {}
            }
            // A wake-up between the scan and here is kept as a permit by
            // `notify_one`, so this cannot miss one.
            self.member.wake().notified().await;
        }
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        self.group.leave(self.member.id());
    }
}

impl fmt::Debug for MemorySubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySubscription")
            .field("group", self.group.name())
            .field("member", &self.member.id())
            .field("partitions", &self.assignment.len())
            .finish_non_exhaustive()
    }
}
