//! One consumer group's queue for one partition of one topic.
//!
//! This is where the bus's delivery guarantees are kept, as plain data behind
//! the partition lock:
//! - `queued` and `in_flight` are both sorted by offset, and every in-flight
//!   offset is lower than every queued one, so deliveries leave in offset
//!   order and an ack is a binary search.
//! - Queued plus in-flight never exceeds the bus's `queue_capacity`; the
//!   publisher checks [`GroupQueue::has_room`] before pushing.
//! - All in-flight deliveries belong to one member, the `holder`. When the
//!   partition is reassigned, the new owner waits until the holder has acked
//!   everything (or dropped its subscription, which puts its un-acked
//!   deliveries back at the front of the queue). This is Kafka's
//!   revoke-then-assign handover: ordering survives a rebalance and nothing
//!   is delivered twice while the previous holder is still alive.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::bus::{ConsumerGroup, Message};

/// Identifies one member (one `subscribe` call) within its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct MemberId(pub(super) u64);

/// The member a partition is assigned to, and how to wake it.
#[derive(Debug, Clone)]
pub(super) struct Owner {
    pub(super) id: MemberId,
    pub(super) wake: Arc<Notify>,
}

/// What [`GroupQueue::take`] found.
#[derive(Debug)]
pub(super) enum Take {
    /// The next message in offset order; it is now in flight.
    Delivered { offset: u64, message: Message },
    /// Nothing to deliver to this member.
    Empty,
    /// Messages are queued for this member, but a previous holder still has
    /// deliveries in flight; they become available once it acks or leaves.
    Blocked,
}

/// What [`GroupQueue::ack`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ack {
    /// The offset was in flight and is now done.
    Acked {
        /// The queue was at capacity before this ack, so a publisher may be
        /// waiting for exactly this slot.
        was_full: bool,
    },
    /// Never delivered, already acked, or put back after its holder left.
    Unknown,
}

#[derive(Debug)]
struct Queued {
    offset: u64,
    message: Message,
}

#[derive(Debug)]
struct InFlight {
    offset: u64,
    /// `None` once acked. Acks may come out of order, so an acked entry stays
    /// as a tombstone until everything before it is acked too; that keeps the
    /// deque sorted without shifting elements.
    message: Option<Message>,
}

#[derive(Debug)]
pub(super) struct GroupQueue {
    group: ConsumerGroup,
    queued: VecDeque<Queued>,
    in_flight: VecDeque<InFlight>,
    /// Live (un-acked) entries in `in_flight`, tombstones excluded.
    in_flight_len: usize,
    holder: Option<MemberId>,
    owner: Option<Owner>,
    acked: u64,
    redelivered: u64,
}

impl GroupQueue {
    pub(super) fn new(group: ConsumerGroup) -> Self {
        Self {
            group,
            queued: VecDeque::new(),
            in_flight: VecDeque::new(),
            in_flight_len: 0,
            holder: None,
            owner: None,
            acked: 0,
            redelivered: 0,
        }
    }

    pub(super) fn group(&self) -> &ConsumerGroup {
        &self.group
    }

    pub(super) fn queued_len(&self) -> usize {
        self.queued.len()
    }

    pub(super) fn in_flight_len(&self) -> usize {
        self.in_flight_len
    }

    pub(super) fn acked(&self) -> u64 {
        self.acked
    }

    pub(super) fn redelivered(&self) -> u64 {
        self.redelivered
    }

    pub(super) fn has_room(&self, capacity: usize) -> bool {
        self.queued.len() + self.in_flight_len < capacity
    }

    /// Appends a message; the caller has checked [`Self::has_room`] and hands
    /// out offsets in increasing order.
    pub(super) fn push(&mut self, offset: u64, message: Message) {
        self.queued.push_back(Queued { offset, message });
        self.wake_owner_if_deliverable();
    }

    /// Hands the next queued message to `member` if it owns the partition.
    pub(super) fn take(&mut self, member: MemberId) -> Take {
        if self.owner.as_ref().map(|o| o.id) != Some(member) || self.queued.is_empty() {
            return Take::Empty;
        }
        if self.in_flight_len > 0 && self.holder != Some(member) {
            return Take::Blocked;
        }
        let Some(Queued { offset, message }) = self.queued.pop_front() else {
            return Take::Empty;
        };
        // The queue keeps its own copy until the ack so it can redeliver;
        // cloning a message is reference-count bumps unless it has headers.
        self.in_flight.push_back(InFlight { offset, message: Some(message.clone()) });
        self.in_flight_len += 1;
        self.holder = Some(member);
        Take::Delivered { offset, message }
    }

    pub(super) fn ack(&mut self, offset: u64, capacity: usize) -> Ack {
        let was_full = !self.has_room(capacity);
        let Ok(index) = self.in_flight.binary_search_by_key(&offset, |f| f.offset) else {
            return Ack::Unknown;
        };
        if self.in_flight.get_mut(index).and_then(|f| f.message.take()).is_none() {
            return Ack::Unknown;
        }
        self.in_flight_len -= 1;
        self.acked += 1;
        while self.in_flight.front().is_some_and(|f| f.message.is_none()) {
            self.in_flight.pop_front();
        }
        if self.in_flight_len == 0 {
            self.in_flight.clear();
            // A handover waits for the previous holder's last ack.
            self.holder = None;
            self.wake_owner_if_deliverable();
        }
        Ack::Acked { was_full }
    }

    /// Assigns the partition to `owner`. `holder_left` says the member holding
    /// the in-flight deliveries is gone: they go back to the front of the queue.
    pub(super) fn reassign(&mut self, owner: Option<Owner>, holder_left: bool) {
        if holder_left {
            self.requeue_in_flight();
        }
        self.owner = owner;
        self.wake_owner_if_deliverable();
    }

    pub(super) fn holder(&self) -> Option<MemberId> {
        self.holder
    }

    fn requeue_in_flight(&mut self) {
        // Every in-flight offset is below every queued one, so pushing them
        // to the front in reverse keeps the queue sorted.
        for entry in self.in_flight.drain(..).rev() {
            if let Some(message) = entry.message {
                self.queued.push_front(Queued { offset: entry.offset, message });
                self.redelivered += 1;
            }
        }
        self.in_flight_len = 0;
        self.holder = None;
    }

    fn wake_owner_if_deliverable(&self) {
        let Some(owner) = &self.owner else { return };
        let free = self.in_flight_len == 0 || self.holder == Some(owner.id);
        if free && !self.queued.is_empty() {
            // `notify_one` stores a permit when the member is not waiting yet,
            // so a wake between its scan and its `.await` is not lost.
            owner.wake.notify_one();
        }
    }
}
