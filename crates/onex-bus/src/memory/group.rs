//! Consumer groups: who is a member, and which partitions each member owns.
//!
//! A group is created by its first `subscribe` and lives as long as the bus,
//! like a Kafka group's committed offsets: its queues keep filling (up to
//! `queue_capacity`, then publishers wait) even while it has no members, so a
//! restarted consumer misses nothing. A group starts receiving a topic when
//! its first member subscribes to that topic; earlier messages are not
//! replayed (Kafka's `auto.offset.reset=latest`).
//!
//! Assignment is recomputed whenever a member joins or leaves. Topic
//! partitions are taken in (topic, partition) order and dealt round-robin to
//! the members subscribed to each topic, as Kafka's `RoundRobinAssignor`
//! does, so members with the same topics get partition counts that differ by
//! at most one. Rebalancing is rare and takes the group lock plus each
//! partition lock in turn; the hot paths never take the group lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use onex_core::TopicName;
use tokio::sync::Notify;

use super::queue::{MemberId, Owner};
use super::sync::lock;
use super::topic::Topic;
use crate::bus::ConsumerGroup;

#[derive(Debug)]
pub(super) struct Group {
    name: ConsumerGroup,
    state: Mutex<GroupState>,
}

#[derive(Debug, Default)]
struct GroupState {
    next_member: u64,
    members: BTreeMap<MemberId, Arc<Member>>,
    /// Every topic a member of this group ever subscribed to.
    topics: BTreeMap<TopicName, GroupTopic>,
}

#[derive(Debug)]
struct GroupTopic {
    topic: Arc<Topic>,
    /// This group's queue slot in each partition, by partition index.
    slots: Vec<usize>,
}

/// One member's side of the group: its topics, its assignment, its wake-up.
#[derive(Debug)]
pub(super) struct Member {
    id: MemberId,
    topics: Vec<TopicName>,
    /// Woken when one of its partitions has something deliverable, when its
    /// assignment changes, and on close.
    wake: Arc<Notify>,
    /// Bumped on every reassignment so the subscription can skip the lock
    /// when nothing changed.
    generation: AtomicU64,
    assignment: Mutex<Arc<[Assigned]>>,
}

/// A partition owned by a member, with the group's slot in it.
#[derive(Debug, Clone)]
pub(super) struct Assigned {
    pub(super) topic: Arc<Topic>,
    pub(super) partition: u32,
    pub(super) slot: usize,
}

impl Group {
    pub(super) fn new(name: ConsumerGroup) -> Self {
        Self { name, state: Mutex::new(GroupState::default()) }
    }

    pub(super) fn name(&self) -> &ConsumerGroup {
        &self.name
    }

    /// Adds a member consuming `topics`, starting the group's queues for any
    /// topic it has not consumed before, and rebalances.
    pub(super) fn join(&self, topics: &[Arc<Topic>]) -> Arc<Member> {
        let mut state = lock(&self.state);
        for topic in topics {
            if !state.topics.contains_key(topic.name()) {
                let slots = topic.partitions().iter().map(|p| lock(&p.state).add_group(self.name.clone())).collect();
                state.topics.insert(topic.name().clone(), GroupTopic { topic: Arc::clone(topic), slots });
            }
        }
        let id = MemberId(state.next_member);
        state.next_member += 1;
        let member = Arc::new(Member {
            id,
            topics: topics.iter().map(|t| t.name().clone()).collect(),
            wake: Arc::new(Notify::new()),
            generation: AtomicU64::new(0),
            assignment: Mutex::new(Arc::from([])),
        });
        state.members.insert(id, Arc::clone(&member));
        state.rebalance();
        member
    }

    /// Removes a member; its un-acked deliveries go back to the front of
    /// their queues for whoever owns those partitions next.
    pub(super) fn leave(&self, id: MemberId) {
        let mut state = lock(&self.state);
        if state.members.remove(&id).is_some() {
            state.rebalance();
        }
    }

    /// Wakes every member so it notices the bus closed.
    pub(super) fn wake_members(&self) {
        for member in lock(&self.state).members.values() {
            member.wake.notify_one();
        }
    }
}

impl GroupState {
    fn rebalance(&self) {
        let mut assignments: BTreeMap<MemberId, Vec<Assigned>> = BTreeMap::new();
        let mut turn = 0_usize;
        for (name, group_topic) in &self.topics {
            let eligible: Vec<&Arc<Member>> = self.members.values().filter(|m| m.topics.contains(name)).collect();
            let partitions = group_topic.topic.partitions().iter().zip(&group_topic.slots);
            for (index, (partition, &slot)) in (0_u32..).zip(partitions) {
                let owner = turn.checked_rem(eligible.len()).and_then(|i| eligible.get(i)).copied();
                turn += 1;
                if let Some(queue) = lock(&partition.state).queue_mut(slot) {
                    let holder_left = queue.holder().is_some_and(|h| !self.members.contains_key(&h));
                    queue.reassign(owner.map(|m| m.owner()), holder_left);
                }
                if let Some(member) = owner {
                    let assigned = Assigned { topic: Arc::clone(&group_topic.topic), partition: index, slot };
                    assignments.entry(member.id).or_default().push(assigned);
                }
            }
        }
        for member in self.members.values() {
            member.assign(assignments.remove(&member.id).unwrap_or_default());
        }
    }
}

impl Member {
    pub(super) fn id(&self) -> MemberId {
        self.id
    }

    pub(super) fn wake(&self) -> &Notify {
        &self.wake
    }

    fn owner(&self) -> Owner {
        Owner { id: self.id, wake: Arc::clone(&self.wake) }
    }

    fn assign(&self, partitions: Vec<Assigned>) {
        let mut assignment = lock(&self.assignment);
        *assignment = partitions.into();
        // Bumped under the lock so a reader's (generation, list) pair matches.
        self.generation.fetch_add(1, Ordering::Release);
        drop(assignment);
        self.wake.notify_one();
    }

    /// The current assignment if it changed since `seen`, with its generation.
    pub(super) fn assignment_since(&self, seen: u64) -> Option<(u64, Arc<[Assigned]>)> {
        if self.generation.load(Ordering::Acquire) == seen {
            return None;
        }
        let assignment = lock(&self.assignment);
        Some((self.generation.load(Ordering::Acquire), Arc::clone(&assignment)))
    }
}
