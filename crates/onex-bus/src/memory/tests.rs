//! Behaviour of the in-memory bus, one guarantee per test.
//!
//! Tests drive futures by hand instead of sleeping: [`poll_once`] polls a
//! future a single time, so "publish is blocked" is asserted as "the future
//! is pending", and "a delivery is ready" as "it completes on the first poll".
//! Only the concurrent accounting tests spawn tasks; they finish on their own
//! and keep a timeout purely as a safety net.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail by panicking")]

use std::collections::{BTreeMap, BTreeSet};
use std::future::{Future, poll_fn};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use onex_core::TopicName;
use onex_core::contract::MemoryBusSpec;
use tokio::sync::broadcast::error::RecvError;

use super::topic::fnv1a;
use super::{MemoryBus, MemoryBusConfig, WATCH_CAPACITY};
use crate::{BusError, ConsumerGroup, Delivery, EventBus, Message, Receipt, Subscription};

fn topic(name: &str) -> TopicName {
    name.parse().unwrap()
}

fn orders() -> TopicName {
    topic("onex.acme.orders.cmd.v1")
}

fn group(name: &str) -> ConsumerGroup {
    ConsumerGroup(name.to_owned())
}

fn bus(partitions: usize, queue_capacity: usize, history: usize) -> MemoryBus {
    MemoryBus::new(MemoryBusConfig {
        queue_capacity: NonZeroUsize::new(queue_capacity).unwrap(),
        partitions: NonZeroUsize::new(partitions).unwrap(),
        history,
    })
}

fn keyed(topic: &TopicName, key: &str, n: u64) -> Message {
    Message::new(topic.clone(), Some(Bytes::from(key.to_owned())), Bytes::from(n.to_string()))
}

fn unkeyed(topic: &TopicName, n: u64) -> Message {
    Message::new(topic.clone(), None, Bytes::from(n.to_string()))
}

/// The number a test message carries.
fn number(delivery: &Delivery) -> u64 {
    std::str::from_utf8(&delivery.message.payload).unwrap().parse().unwrap()
}

fn key(delivery: &Delivery) -> String {
    String::from_utf8(delivery.message.key.clone().unwrap().to_vec()).unwrap()
}

/// Polls `future` once: `Some(output)` if it completed, `None` if pending.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
    poll_fn(|cx| {
        Poll::Ready(match Pin::new(&mut *future).poll(cx) {
            Poll::Ready(output) => Some(output),
            Poll::Pending => None,
        })
    })
    .await
}

/// What `next` yields without waiting: `None` if it would wait.
async fn next_now(subscription: &mut Box<dyn Subscription>) -> Option<Option<Result<Delivery, BusError>>> {
    poll_once(&mut subscription.next()).await
}

/// The delivery `next` yields without waiting.
async fn ready(subscription: &mut Box<dyn Subscription>) -> Delivery {
    next_now(subscription).await.expect("a delivery is ready").expect("bus is open").unwrap()
}

/// Every delivery available without waiting, none acked.
async fn drain(subscription: &mut Box<dyn Subscription>) -> Vec<Delivery> {
    let mut deliveries = Vec::new();
    while let Some(Some(delivery)) = next_now(subscription).await {
        deliveries.push(delivery.unwrap());
    }
    deliveries
}

async fn publish_all(bus: &MemoryBus, messages: impl IntoIterator<Item = Message>) {
    for message in messages {
        bus.publish(message).await.unwrap();
    }
}

#[test]
fn defaults_match_seed_004_and_the_contract_model() {
    let config = MemoryBusConfig::default();
    assert_eq!(config.queue_capacity.get(), 1024);
    assert_eq!(config.partitions.get(), 4);
    assert_eq!(config.history, 1000);
    assert_eq!(MemoryBusConfig::from(MemoryBusSpec::default()), config);
}

#[test]
fn key_hash_is_fnv1a_so_partitions_are_stable_across_runs() {
    // Published FNV-1a 64 test vectors.
    assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
}

#[tokio::test]
async fn messages_with_the_same_key_arrive_in_publish_order_on_one_partition() {
    let bus = bus(4, 1024, 0);
    let mut sub = bus.subscribe(&group("g"), &[orders()]).await.unwrap();
    let keys = ["alice", "bob", "carol", "dave", "erin"];
    publish_all(&bus, (0..200).map(|n| keyed(&orders(), keys[n as usize % keys.len()], n))).await;

    let deliveries = drain(&mut sub).await;

    assert_eq!(deliveries.len(), 200);
    let mut by_key: BTreeMap<String, Vec<&Delivery>> = BTreeMap::new();
    for delivery in &deliveries {
        by_key.entry(key(delivery)).or_default().push(delivery);
    }
    for (key, deliveries) in by_key {
        let numbers: Vec<u64> = deliveries.iter().map(|d| number(d)).collect();
        assert!(numbers.is_sorted(), "{key}: {numbers:?}");
        let partitions: BTreeSet<u32> = deliveries.iter().map(|d| d.receipt.partition).collect();
        assert_eq!(partitions.len(), 1, "{key} spans partitions {partitions:?}");
    }
    let mut offsets: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for delivery in &deliveries {
        offsets.entry(delivery.receipt.partition).or_default().push(delivery.receipt.offset);
    }
    for (partition, offsets) in offsets {
        assert_eq!(offsets, (0..offsets.len() as u64).collect::<Vec<_>>(), "partition {partition}");
    }
}

#[tokio::test]
async fn the_same_key_lands_on_the_same_partition_on_every_bus() {
    let first = bus(8, 16, 100);
    let second = bus(8, 16, 100);
    for n in 0..20 {
        let key = format!("key-{n}");
        first.publish(keyed(&orders(), &key, n)).await.unwrap();
        second.publish(keyed(&orders(), &key, n)).await.unwrap();
    }
    let partitions = |bus: &MemoryBus| bus.history().iter().map(|e| e.partition).collect::<Vec<_>>();
    assert_eq!(partitions(&first), partitions(&second));
    let expected: Vec<u32> = (0..20).map(|n| (fnv1a(format!("key-{n}").as_bytes()) % 8) as u32).collect();
    assert_eq!(partitions(&first), expected);
}

#[tokio::test]
async fn messages_without_a_key_go_round_robin() {
    let bus = bus(4, 1024, 100);
    let mut sub = bus.subscribe(&group("g"), &[orders()]).await.unwrap();

    publish_all(&bus, (0..8).map(|n| unkeyed(&orders(), n))).await;

    let partitions: Vec<u32> = bus.history().iter().map(|e| e.partition).collect();
    assert_eq!(partitions, [0, 1, 2, 3, 0, 1, 2, 3]);
    let mut per_partition: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for delivery in drain(&mut sub).await {
        per_partition.entry(delivery.receipt.partition).or_default().push(delivery.receipt.offset);
    }
    assert_eq!(per_partition, (0..4).map(|p| (p, vec![0, 1])).collect());
}

#[tokio::test]
async fn every_group_receives_every_message() {
    let bus = bus(4, 1024, 0);
    let mut audit = bus.subscribe(&group("audit"), &[orders()]).await.unwrap();
    let mut billing = bus.subscribe(&group("billing"), &[orders()]).await.unwrap();

    publish_all(&bus, (0..50).map(|n| unkeyed(&orders(), n))).await;

    for sub in [&mut audit, &mut billing] {
        let numbers: BTreeSet<u64> = drain(sub).await.iter().map(number).collect();
        assert_eq!(numbers, (0..50).collect());
    }
}

#[tokio::test]
async fn a_group_only_receives_messages_published_after_it_subscribed() {
    let bus = bus(2, 1024, 0);
    publish_all(&bus, (0..3).map(|n| unkeyed(&orders(), n))).await;

    let mut sub = bus.subscribe(&group("late"), &[orders()]).await.unwrap();
    publish_all(&bus, (3..5).map(|n| unkeyed(&orders(), n))).await;

    let numbers: BTreeSet<u64> = drain(&mut sub).await.iter().map(number).collect();
    assert_eq!(numbers, BTreeSet::from([3, 4]));
}

#[tokio::test]
async fn members_of_one_group_split_partitions_and_together_receive_each_message_once() {
    let bus = bus(4, 1024, 0);
    let mut first = bus.subscribe(&group("g"), &[orders()]).await.unwrap();
    let mut second = bus.subscribe(&group("g"), &[orders()]).await.unwrap();

    publish_all(&bus, (0..100).map(|n| unkeyed(&orders(), n))).await;
    let from_first = drain(&mut first).await;
    let from_second = drain(&mut second).await;

    let partitions = |ds: &[Delivery]| ds.iter().map(|d| d.receipt.partition).collect::<BTreeSet<_>>();
    assert_eq!(partitions(&from_first).len(), 2);
    assert_eq!(partitions(&from_second).len(), 2);
    assert!(partitions(&from_first).is_disjoint(&partitions(&from_second)));
    let mut numbers: Vec<u64> = from_first.iter().chain(&from_second).map(number).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..100).collect::<Vec<_>>());
}

#[tokio::test]
async fn dropping_a_member_redelivers_its_unacked_messages_to_the_remaining_member() {
    let bus = bus(2, 1024, 0);
    let g = group("g");
    // Round-robin assignment: the first member gets partition 0, the second 1.
    let mut leaving = bus.subscribe(&g, &[orders()]).await.unwrap();
    let mut staying = bus.subscribe(&g, &[orders()]).await.unwrap();
    publish_all(&bus, (0..10).map(|n| unkeyed(&orders(), n))).await;

    let taken = drain(&mut leaving).await;
    assert!(taken.iter().all(|d| d.receipt.partition == 0));
    assert_eq!(taken.iter().map(|d| d.receipt.offset).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    bus.ack(&taken[0].receipt).await.unwrap();
    bus.ack(&taken[1].receipt).await.unwrap();
    drop(leaving);
    // Newer messages on partition 0 must come after the redeliveries.
    publish_all(&bus, (10..12).map(|n| unkeyed(&orders(), n))).await;

    let offsets_on_0: Vec<u64> =
        drain(&mut staying).await.iter().filter(|d| d.receipt.partition == 0).map(|d| d.receipt.offset).collect();
    assert_eq!(offsets_on_0, [2, 3, 4, 5]);
    let stats = bus.stats();
    let partition_0 = stats.group_topic(&g, &orders())[0];
    assert_eq!((partition_0.redelivered, partition_0.acked, partition_0.in_flight), (3, 2, 4));
}

#[tokio::test]
async fn a_group_keeps_its_messages_while_it_has_no_members() {
    let bus = bus(1, 8, 0);
    let g = group("g");
    let mut first = bus.subscribe(&g, &[orders()]).await.unwrap();
    bus.publish(unkeyed(&orders(), 0)).await.unwrap();
    let unacked = ready(&mut first).await;
    drop(first);

    bus.publish(unkeyed(&orders(), 1)).await.unwrap();
    let mut restarted = bus.subscribe(&g, &[orders()]).await.unwrap();

    let offsets: Vec<u64> = drain(&mut restarted).await.iter().map(|d| d.receipt.offset).collect();
    assert_eq!(offsets, [unacked.receipt.offset, 1]);
}

#[tokio::test]
async fn a_joining_member_takes_a_partition_only_after_the_previous_holder_acks() {
    let bus = bus(2, 1024, 0);
    let g = group("g");
    let mut first = bus.subscribe(&g, &[orders()]).await.unwrap();
    publish_all(&bus, (0..4).map(|n| unkeyed(&orders(), n))).await;
    let on_0 = ready(&mut first).await;
    let on_1 = ready(&mut first).await;
    assert_eq!((on_0.receipt.partition, on_1.receipt.partition), (0, 1));

    // Partition 1 moves to the newcomer while offset 0 is still in flight.
    let mut second = bus.subscribe(&g, &[orders()]).await.unwrap();
    assert!(next_now(&mut second).await.is_none(), "must wait for the previous holder");

    bus.ack(&on_1.receipt).await.unwrap();
    let moved = ready(&mut second).await;
    assert_eq!((moved.receipt.partition, moved.receipt.offset), (1, 1));
    let kept = ready(&mut first).await;
    assert_eq!((kept.receipt.partition, kept.receipt.offset), (0, 1));
    assert!(next_now(&mut first).await.is_none());
}

#[tokio::test]
async fn publish_waits_while_a_partition_is_full_and_resumes_after_an_ack() {
    let bus = bus(1, 2, 0);
    let mut sub = bus.subscribe(&group("g"), &[orders()]).await.unwrap();
    publish_all(&bus, (0..2).map(|n| unkeyed(&orders(), n))).await;

    let mut third = bus.publish(unkeyed(&orders(), 2));
    assert!(poll_once(&mut third).await.is_none(), "queue is full");
    // Delivered but not acked still occupies the slot.
    let first = ready(&mut sub).await;
    assert!(poll_once(&mut third).await.is_none(), "in flight counts against capacity");

    bus.ack(&first.receipt).await.unwrap();

    assert_eq!(poll_once(&mut third).await, Some(Ok(())));
    assert_eq!(drain(&mut sub).await.iter().map(number).collect::<Vec<_>>(), [1, 2]);
}

#[tokio::test]
async fn publish_waits_for_the_slowest_group() {
    let bus = bus(1, 1, 0);
    let mut fast = bus.subscribe(&group("fast"), &[orders()]).await.unwrap();
    let mut slow = bus.subscribe(&group("slow"), &[orders()]).await.unwrap();
    bus.publish(unkeyed(&orders(), 0)).await.unwrap();
    let fast_delivery = ready(&mut fast).await;
    bus.ack(&fast_delivery.receipt).await.unwrap();

    let mut second = bus.publish(unkeyed(&orders(), 1));
    assert!(poll_once(&mut second).await.is_none(), "the slow group is full");

    let slow_delivery = ready(&mut slow).await;
    bus.ack(&slow_delivery.receipt).await.unwrap();
    assert_eq!(poll_once(&mut second).await, Some(Ok(())));
}

#[tokio::test]
async fn a_dropped_waiting_publish_never_happens() {
    let bus = bus(1, 1, 0);
    let _sub = bus.subscribe(&group("g"), &[orders()]).await.unwrap();
    bus.publish(unkeyed(&orders(), 0)).await.unwrap();

    let mut blocked = bus.publish(unkeyed(&orders(), 1));
    assert!(poll_once(&mut blocked).await.is_none());
    drop(blocked);

    assert_eq!(bus.stats().published(&orders()), 1);
}

#[tokio::test]
async fn a_dropped_waiting_next_loses_nothing() {
    let bus = bus(2, 8, 0);
    let mut sub = bus.subscribe(&group("g"), &[orders()]).await.unwrap();
    assert!(next_now(&mut sub).await.is_none());

    bus.publish(unkeyed(&orders(), 7)).await.unwrap();

    assert_eq!(number(&ready(&mut sub).await), 7);
}

#[tokio::test]
async fn publish_batch_keeps_order_per_partition() {
    let bus = bus(3, 1024, 0);
    let mut sub = bus.subscribe(&group("g"), &[orders()]).await.unwrap();
    let keys = ["a", "b", "c", "d"];

    bus.publish_batch((0..40).map(|n| keyed(&orders(), keys[n as usize % 4], n)).collect()).await.unwrap();

    let mut by_partition: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for delivery in drain(&mut sub).await {
        by_partition.entry(delivery.receipt.partition).or_default().push(number(&delivery));
    }
    assert_eq!(by_partition.values().map(Vec::len).sum::<usize>(), 40);
    assert!(by_partition.values().all(|numbers| numbers.is_sorted()), "{by_partition:?}");
}

#[tokio::test]
async fn acking_twice_is_an_unknown_receipt() {
    let bus = bus(1, 8, 0);
    let mut sub = bus.subscribe(&group("g"), &[orders()]).await.unwrap();
    bus.publish(unkeyed(&orders(), 0)).await.unwrap();
    let delivery = ready(&mut sub).await;

    bus.ack(&delivery.receipt).await.unwrap();

    assert_eq!(
        bus.ack(&delivery.receipt).await,
        Err(BusError::UnknownReceipt { topic: orders().to_string(), partition: 0, offset: 0 })
    );
}

#[tokio::test]
async fn acking_a_receipt_that_was_never_delivered_is_an_unknown_receipt() {
    let bus = bus(1, 8, 0);
    let _sub = bus.subscribe(&group("g"), &[orders()]).await.unwrap();
    bus.publish(unkeyed(&orders(), 0)).await.unwrap();
    let receipt = |group_name: &str, topic: TopicName, partition, offset| Receipt {
        group: group(group_name),
        topic,
        partition,
        offset,
    };

    for unknown in [
        receipt("g", orders(), 0, 0), // queued, not delivered
        receipt("g", orders(), 0, 9),
        receipt("g", orders(), 5, 0),
        receipt("other", orders(), 0, 0),
        receipt("g", topic("onex.acme.unseen.cmd.v1"), 0, 0),
    ] {
        assert!(matches!(bus.ack(&unknown).await, Err(BusError::UnknownReceipt { .. })), "{unknown:?}");
    }
}

#[tokio::test]
async fn acks_may_come_out_of_order() {
    let bus = bus(1, 3, 0);
    let g = group("g");
    let mut sub = bus.subscribe(&g, &[orders()]).await.unwrap();
    publish_all(&bus, (0..3).map(|n| unkeyed(&orders(), n))).await;
    let deliveries = drain(&mut sub).await;

    for index in [2, 0, 1] {
        bus.ack(&deliveries[index].receipt).await.unwrap();
    }

    assert!(matches!(bus.ack(&deliveries[2].receipt).await, Err(BusError::UnknownReceipt { .. })));
    let stats = bus.stats();
    let partition = stats.group_topic(&g, &orders())[0];
    assert_eq!((partition.acked, partition.lag()), (3, 0));
    // All three slots are free again.
    publish_all(&bus, (3..6).map(|n| unkeyed(&orders(), n))).await;
}

#[tokio::test]
async fn history_keeps_only_the_last_entries_with_increasing_sequence_numbers() {
    let bus = bus(1, 8, 3);
    let payments = topic("onex.acme.payments.evt.v1");

    publish_all(&bus, [unkeyed(&orders(), 0), unkeyed(&payments, 1), unkeyed(&orders(), 2)]).await;
    publish_all(&bus, [unkeyed(&payments, 3), unkeyed(&orders(), 4)]).await;

    let history = bus.history();
    let summary: Vec<(u64, &str, u32, u64)> =
        history.iter().map(|e| (e.sequence, e.topic().as_str(), e.partition, e.offset)).collect();
    assert_eq!(
        summary,
        [
            (2, "onex.acme.orders.cmd.v1", 0, 1),
            (3, "onex.acme.payments.evt.v1", 0, 1),
            (4, "onex.acme.orders.cmd.v1", 0, 2),
        ]
    );
    assert_eq!(history.iter().map(|e| e.message.payload.clone()).collect::<Vec<_>>(), ["2", "3", "4"]);
}

#[tokio::test]
async fn zero_history_keeps_nothing_but_watchers_still_see_publishes() {
    let bus = bus(1, 8, 0);
    let mut watch = bus.watch();

    bus.publish(unkeyed(&orders(), 0)).await.unwrap();

    assert!(bus.history().is_empty());
    assert_eq!(watch.recv().await.unwrap().sequence, 0);
}

#[tokio::test]
async fn a_lagging_watcher_misses_the_oldest_entries_and_never_blocks_publishers() {
    let bus = bus(1, 8, 10);
    let mut watch = bus.watch();
    let total = WATCH_CAPACITY as u64 + 5;

    // No group subscribed, so nothing but the watcher could hold publishers back.
    publish_all(&bus, (0..total).map(|n| unkeyed(&orders(), n))).await;

    assert_eq!(watch.recv().await.unwrap_err(), RecvError::Lagged(5));
    assert_eq!(watch.recv().await.unwrap().sequence, 5);
    assert_eq!(bus.history().last().map(|e| e.sequence), Some(total - 1));
}

#[tokio::test]
async fn close_drains_queued_deliveries_then_ends() {
    let bus = bus(1, 8, 0);
    let g = group("g");
    let mut sub = bus.subscribe(&g, &[orders()]).await.unwrap();
    publish_all(&bus, (0..3).map(|n| unkeyed(&orders(), n))).await;
    let in_flight = ready(&mut sub).await;

    bus.close().await;

    assert_eq!(bus.publish(unkeyed(&orders(), 3)).await, Err(BusError::Closed));
    assert!(matches!(bus.subscribe(&g, &[orders()]).await, Err(BusError::Closed)));
    assert_eq!(number(&ready(&mut sub).await), 1);
    assert_eq!(number(&ready(&mut sub).await), 2);
    assert!(matches!(next_now(&mut sub).await, Some(None)));
    assert!(matches!(next_now(&mut sub).await, Some(None)), "stays ended");
    // In-flight work can still be acked after close.
    bus.ack(&in_flight.receipt).await.unwrap();
    assert!(!bus.health().ready);
}

#[tokio::test]
async fn close_ends_a_waiting_subscription() {
    let bus = bus(1, 8, 0);
    let mut sub = bus.subscribe(&group("g"), &[orders()]).await.unwrap();
    let mut next = sub.next();
    assert!(poll_once(&mut next).await.is_none());

    bus.close().await;

    assert!(matches!(poll_once(&mut next).await, Some(None)));
}

#[tokio::test]
async fn close_fails_a_publish_waiting_for_room() {
    let bus = bus(1, 1, 0);
    let _sub = bus.subscribe(&group("g"), &[orders()]).await.unwrap();
    bus.publish(unkeyed(&orders(), 0)).await.unwrap();
    let mut blocked = bus.publish(unkeyed(&orders(), 1));
    assert!(poll_once(&mut blocked).await.is_none());

    bus.close().await;

    assert_eq!(poll_once(&mut blocked).await, Some(Err(BusError::Closed)));
}

#[tokio::test]
async fn health_is_ready_until_closed() {
    let bus = bus(1, 8, 0);
    let _sub = bus.subscribe(&group("g"), &[orders(), topic("onex.acme.payments.evt.v1")]).await.unwrap();
    assert!(bus.health().ready);
    assert_eq!(bus.health().detail, "memory bus: 2 topics, 1 group");

    bus.close().await;

    assert!(!bus.health().ready);
    assert_eq!(bus.health().detail, "memory bus: closed, 2 topics, 1 group");
}

#[tokio::test]
async fn stats_count_queued_in_flight_and_acked_per_partition() {
    let bus = bus(2, 8, 0);
    let g = group("g");
    let mut sub = bus.subscribe(&g, &[orders()]).await.unwrap();
    publish_all(&bus, (0..6).map(|n| unkeyed(&orders(), n))).await;
    let first = ready(&mut sub).await;
    let _second = ready(&mut sub).await;
    bus.ack(&first.receipt).await.unwrap();

    let stats = bus.stats();

    assert_eq!(stats.published(&orders()), 6);
    let counts: Vec<(u32, usize, usize, u64)> =
        stats.group_topic(&g, &orders()).iter().map(|s| (s.partition, s.queued, s.in_flight, s.acked)).collect();
    assert_eq!(counts, [(0, 2, 0, 1), (1, 2, 1, 0)]);
}

/// Publishes `total` messages from `producers` tasks while `members` per
/// group consume, hold the odd delivery back and ack out of order, then
/// checks every group got every message exactly once and the counters agree.
async fn run_accounting(config: MemoryBusConfig, total: u64, producers: u64, groups: &[(&'static str, usize)]) {
    let bus = MemoryBus::new(config);
    let hold_back = config.queue_capacity.get() > 1;
    let mut consumers = tokio::task::JoinSet::new();
    for &(name, members) in groups {
        for _ in 0..members {
            let mut sub = bus.subscribe(&group(name), &[orders()]).await.unwrap();
            let bus = bus.clone();
            consumers.spawn(async move {
                let mut held: Option<Receipt> = None;
                let mut seen = Vec::new();
                while let Some(delivery) = sub.next().await {
                    let delivery = delivery.unwrap();
                    seen.push(number(&delivery));
                    // Hold every third delivery until the next one is acked,
                    // so acks arrive out of order.
                    if hold_back && held.is_none() && seen.len() % 3 == 0 {
                        held = Some(delivery.receipt);
                    } else {
                        bus.ack(&delivery.receipt).await.unwrap();
                        if let Some(receipt) = held.take() {
                            bus.ack(&receipt).await.unwrap();
                        }
                    }
                }
                if let Some(receipt) = held {
                    bus.ack(&receipt).await.unwrap();
                }
                (name, seen)
            });
        }
    }
    let mut publishers = tokio::task::JoinSet::new();
    for producer in 0..producers {
        let bus = bus.clone();
        publishers.spawn(async move {
            for n in (producer..total).step_by(producers as usize) {
                // A mix of keyed and unkeyed traffic.
                let message =
                    if n % 4 == 0 { unkeyed(&orders(), n) } else { keyed(&orders(), &format!("k{}", n % 7), n) };
                bus.publish(message).await.unwrap();
            }
        });
    }
    while let Some(result) = publishers.join_next().await {
        result.unwrap();
    }
    bus.close().await;
    let mut received: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    while let Some(result) = consumers.join_next().await {
        let (name, seen) = result.unwrap();
        received.entry(name).or_default().extend(seen);
    }

    let stats = bus.stats();
    assert_eq!(stats.published(&orders()), total);
    for &(name, _) in groups {
        let numbers = received.get_mut(name).unwrap();
        numbers.sort_unstable();
        assert_eq!(*numbers, (0..total).collect::<Vec<_>>(), "group {name}");
        let partitions = stats.group_topic(&group(name), &orders());
        assert_eq!(partitions.iter().map(|p| p.acked).sum::<u64>(), total, "group {name}");
        assert!(partitions.iter().all(|p| p.lag() == 0), "group {name}: {partitions:?}");
    }
}

#[tokio::test]
async fn counts_add_up_after_consuming_everything() {
    for partitions in [1, 3] {
        for capacity in [1, 2, 5] {
            let config = MemoryBusConfig {
                queue_capacity: NonZeroUsize::new(capacity).unwrap(),
                partitions: NonZeroUsize::new(partitions).unwrap(),
                history: 16,
            };
            tokio::time::timeout(Duration::from_secs(30), run_accounting(config, 600, 2, &[("a", 1), ("b", 2)]))
                .await
                .unwrap_or_else(|_| panic!("stalled with {partitions} partitions, capacity {capacity}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_add_up_under_parallel_publishers_and_consumers() {
    let config = MemoryBusConfig {
        queue_capacity: NonZeroUsize::new(4).unwrap(),
        partitions: NonZeroUsize::new(4).unwrap(),
        history: 100,
    };
    tokio::time::timeout(Duration::from_secs(60), run_accounting(config, 20_000, 3, &[("a", 2), ("b", 3)]))
        .await
        .expect("no lost wake-up stalls the bus");
}
