//! Which offsets are safe to commit.
//!
//! Deliveries of one partition are handed out in offset order but may finish
//! out of order (the host runs different entities in parallel). Kafka keeps
//! one committed offset per partition, meaning "everything below is done".
//! So the offset to commit is the lowest one still in flight, or one past the
//! highest delivered when nothing is. Pure bookkeeping: no clock, no broker.

use std::collections::{HashMap, VecDeque};

/// In-flight offsets of one partition, in delivery (= offset) order.
#[derive(Debug, Default, Clone)]
pub(crate) struct PartitionOffsets {
    /// (offset, done); the front is the lowest offset not yet committed past.
    window: VecDeque<(i64, bool)>,
    /// One past the highest offset delivered so far.
    next: Option<i64>,
    /// The last commit position handed out by `acked`.
    committable: Option<i64>,
    /// Entries of `window` not done.
    pending: usize,
}

impl PartitionOffsets {
    /// Records a delivery. Offsets must grow; a smaller one (a seek back or a
    /// redelivery after a rebalance) restarts the window from there.
    pub(crate) fn delivered(&mut self, offset: i64) {
        if self.next.is_some_and(|n| offset < n) {
            // Everything at or above `offset` will be delivered again.
            while self.window.back().is_some_and(|(o, _)| *o >= offset) {
                if let Some((_, done)) = self.window.pop_back() {
                    self.pending -= usize::from(!done);
                }
            }
        }
        self.window.push_back((offset, false));
        self.pending += 1;
        self.next = Some(offset + 1);
    }

    /// Marks `offset` done. Returns the new commit position if it moved forward,
    /// `None` if it did not (an earlier offset is still in flight) or if the
    /// offset was not in flight here.
    pub(crate) fn acked(&mut self, offset: i64) -> Option<i64> {
        let i = self.window.binary_search_by_key(&offset, |(o, _)| *o).ok()?;
        let slot = self.window.get_mut(i)?;
        if slot.1 {
            return None;
        }
        slot.1 = true;
        self.pending -= 1;
        if i > 0 {
            // An earlier offset is still in flight: nothing new is committable.
            return None;
        }
        while self.window.front().is_some_and(|(_, done)| *done) {
            self.window.pop_front();
        }
        let position = self.window.front().map(|(o, _)| *o).or(self.next)?;
        self.committable = Some(position);
        Some(position)
    }

    /// Deliveries not yet acked.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending
    }

    /// The position to commit now, if any delivery finished.
    pub(crate) fn committable(&self) -> Option<i64> {
        self.committable
    }

    /// One past the highest offset delivered.
    pub(crate) fn next(&self) -> Option<i64> {
        self.next
    }
}

/// In-flight offsets of every partition one consumer owns.
#[derive(Debug, Default)]
pub(crate) struct OffsetBook {
    partitions: HashMap<(String, i32), PartitionOffsets>,
    in_flight: usize,
}

impl OffsetBook {
    /// Starts tracking a newly assigned partition (no-op if already tracked).
    pub(crate) fn assign(&mut self, topic: &str, partition: i32) {
        self.partitions.entry((topic.to_owned(), partition)).or_default();
    }

    /// Stops tracking a revoked partition. Returns its commit position (if any
    /// delivery finished) so it can be committed before the partition moves.
    /// Deliveries still in flight there are abandoned: the next owner
    /// receives them again from the committed offset.
    pub(crate) fn revoke(&mut self, topic: &str, partition: i32) -> Option<i64> {
        let p = self.partitions.remove(&(topic.to_owned(), partition))?;
        self.in_flight = self.in_flight.saturating_sub(p.in_flight());
        p.committable()
    }

    /// Records a delivery. Returns false if the partition is not assigned here.
    pub(crate) fn delivered(&mut self, topic: &str, partition: i32, offset: i64) -> bool {
        match self.partitions.get_mut(&(topic.to_owned(), partition)) {
            Some(p) => {
                let before = p.in_flight();
                p.delivered(offset);
                self.in_flight = self.in_flight + p.in_flight() - before;
                true
            }
            None => false,
        }
    }

    /// Marks a delivery done; see [`PartitionOffsets::acked`]. `Err` means the
    /// partition or offset is not in flight here (revoked meanwhile, or acked twice).
    pub(crate) fn acked(&mut self, topic: &str, partition: i32, offset: i64) -> Result<Option<i64>, ()> {
        let p = self.partitions.get_mut(&(topic.to_owned(), partition)).ok_or(())?;
        let before = p.in_flight();
        let moved = p.acked(offset);
        let after = p.in_flight();
        if after == before {
            return Err(());
        }
        self.in_flight -= before - after;
        Ok(moved)
    }

    /// Deliveries not yet acked, over every partition.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether this consumer tracks (owns) the partition.
    pub(crate) fn owns(&self, topic: &str, partition: i32) -> bool {
        self.partitions.contains_key(&(topic.to_owned(), partition))
    }

    /// Every tracked partition with its state.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&(String, i32), &PartitionOffsets)> {
        self.partitions.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_acks_move_the_position_one_by_one() {
        let mut p = PartitionOffsets::default();
        for o in 10..13 {
            p.delivered(o);
        }
        assert_eq!(p.acked(10), Some(11));
        assert_eq!(p.acked(11), Some(12));
        assert_eq!(p.acked(12), Some(13));
        assert_eq!(p.in_flight(), 0);
    }

    #[test]
    fn an_early_offset_in_flight_holds_the_position_back() {
        let mut p = PartitionOffsets::default();
        for o in 0..4 {
            p.delivered(o);
        }
        assert_eq!(p.acked(2), None, "0 is still in flight");
        assert_eq!(p.acked(3), None);
        assert_eq!(p.acked(1), None);
        assert_eq!(p.in_flight(), 1);
        assert_eq!(p.acked(0), Some(4), "all done: commit past the highest");
    }

    #[test]
    fn double_and_unknown_acks_are_rejected() {
        let mut p = PartitionOffsets::default();
        p.delivered(5);
        p.delivered(6);
        assert_eq!(p.acked(7), None);
        assert_eq!(p.acked(6), None);
        assert_eq!(p.acked(6), None);
        assert_eq!(p.in_flight(), 1);
        assert_eq!(p.acked(5), Some(7));
        assert_eq!(p.acked(5), None);
    }

    #[test]
    fn gaps_in_offsets_are_fine() {
        // Compacted topics and transaction markers leave holes.
        let mut p = PartitionOffsets::default();
        for o in [3, 7, 20] {
            p.delivered(o);
        }
        assert_eq!(p.acked(7), None);
        assert_eq!(p.acked(3), Some(20));
        assert_eq!(p.acked(20), Some(21));
    }

    #[test]
    fn a_redelivery_from_an_earlier_offset_restarts_the_window() {
        let mut p = PartitionOffsets::default();
        for o in 0..5 {
            p.delivered(o);
        }
        assert_eq!(p.acked(0), Some(1));
        // The consumer was reset to offset 2: 2..5 come again.
        p.delivered(2);
        assert_eq!(p.in_flight(), 2, "1 from before, 2 again");
        assert_eq!(p.acked(1), Some(2));
        assert_eq!(p.acked(2), Some(3));
        assert_eq!(p.next(), Some(3));
    }

    /// Every ack order of 6 deliveries: the position never passes an offset still
    /// in flight, never moves back, and ends one past the last.
    #[test]
    fn every_ack_order_commits_only_finished_prefixes() {
        fn permutations(items: Vec<i64>) -> Vec<Vec<i64>> {
            if items.len() <= 1 {
                return vec![items];
            }
            let mut out = Vec::new();
            for i in 0..items.len() {
                let mut rest = items.clone();
                let first = rest.remove(i);
                for mut p in permutations(rest) {
                    p.insert(0, first);
                    out.push(p);
                }
            }
            out
        }
        let orders = permutations((100..106).collect());
        assert_eq!(orders.len(), 720);
        for order in orders {
            let mut p = PartitionOffsets::default();
            (100..106).for_each(|o| p.delivered(o));
            let mut done = std::collections::BTreeSet::new();
            let mut last = 100;
            for o in &order {
                done.insert(*o);
                if let Some(position) = p.acked(*o) {
                    assert!(position > last, "{order:?}: moved back or stood still");
                    assert!((100..position).all(|x| done.contains(&x)), "{order:?}: passed an offset in flight");
                    last = position;
                }
            }
            assert_eq!(last, 106, "{order:?}");
            assert_eq!(p.in_flight(), 0);
        }
    }

    #[test]
    fn the_book_counts_in_flight_over_partitions_and_forgets_revoked_ones() {
        let mut b = OffsetBook::default();
        b.assign("t", 0);
        b.assign("t", 1);
        assert!(b.delivered("t", 0, 0));
        assert!(b.delivered("t", 0, 1));
        assert!(b.delivered("t", 1, 0));
        assert!(!b.delivered("t", 2, 0), "partition 2 is not ours");
        assert_eq!(b.in_flight(), 3);
        assert_eq!(b.acked("t", 0, 0), Ok(Some(1)));
        assert_eq!(b.in_flight(), 2);
        // Revoke with offset 1 still in flight: commit 1, abandon the rest.
        assert_eq!(b.revoke("t", 0), Some(1));
        assert_eq!(b.in_flight(), 1);
        assert!(!b.owns("t", 0));
        assert_eq!(b.acked("t", 0, 1), Err(()), "a late ack of a revoked partition is ignored");
        assert_eq!(b.acked("t", 1, 0), Ok(Some(1)));
        assert_eq!(b.acked("t", 1, 0), Err(()));
        assert_eq!(b.in_flight(), 0);
        assert_eq!(b.revoke("t", 1), Some(1));
        assert_eq!(b.revoke("t", 1), None);
    }
}
