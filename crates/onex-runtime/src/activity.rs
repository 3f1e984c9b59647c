//! What the host is doing right now, for probes, the admin API and the
//! dashboard: its lifecycle phase, the envelopes in flight, per-node counts,
//! and short rings of recent outcomes and dead letters.
//!
//! Written on the envelope path, so every update is one relaxed atomic or one
//! short, uncontended lock; nothing here is read to make a decision about an
//! envelope.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

use onex_core::{EnvelopeId, Timestamp};
use parking_lot::Mutex;
use serde::Serialize;

/// Recent outcomes kept for the dashboard.
const RECENT: usize = 50;
/// Recent dead letters kept for the dashboard.
const RECENT_DEAD: usize = 20;

/// Where the host is in its life. Readiness is `Ready` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Built, not yet consuming.
    Starting,
    /// Consuming.
    Ready,
    /// Shutting down: no new envelopes taken, in-flight ones finishing.
    Draining,
    /// Stopped.
    Stopped,
}

impl Phase {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Starting,
            1 => Self::Ready,
            2 => Self::Draining,
            _ => Self::Stopped,
        }
    }
}

/// Per-node counters.
#[derive(Debug, Default)]
pub(crate) struct NodeCounters {
    pub(crate) received: AtomicU64,
    pub(crate) succeeded: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
}

/// A snapshot of one node's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct NodeCounts {
    pub received: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub dead_lettered: u64,
}

impl NodeCounters {
    pub(crate) fn snapshot(&self) -> NodeCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NodeCounts {
            received: get(&self.received),
            succeeded: get(&self.succeeded),
            failed: get(&self.failed),
            dead_lettered: get(&self.dead_lettered),
        }
    }
}

/// One finished envelope, as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentOutcome {
    pub envelope_id: EnvelopeId,
    pub operation: Option<String>,
    /// The node that answered; `None` when no node took it.
    pub node: Option<String>,
    /// `success`, `error` or `dead_letter`.
    pub outcome: &'static str,
    /// Error code when it failed.
    pub code: Option<String>,
    pub finished_at: Timestamp,
    pub duration_ms: f64,
}

/// One dead-letter record written, in short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecentDeadLetter {
    pub envelope_id: Option<EnvelopeId>,
    pub original_topic: String,
    pub partition: u32,
    pub offset: u64,
    pub code: String,
    pub reason: String,
    pub at: Timestamp,
}

/// Envelopes in flight: taken from the bus, outcome not yet published.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InFlight {
    pub envelope_id: EnvelopeId,
    pub node: String,
    pub seconds: f64,
}

#[derive(Debug)]
pub(crate) struct Activity {
    phase: AtomicU8,
    started: Instant,
    in_flight: Mutex<HashMap<EnvelopeId, (usize, Instant)>>,
    recent: Mutex<VecDeque<RecentOutcome>>,
    dead: Mutex<VecDeque<RecentDeadLetter>>,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            phase: AtomicU8::new(0),
            started: Instant::now(),
            in_flight: Mutex::new(HashMap::new()),
            recent: Mutex::new(VecDeque::with_capacity(RECENT)),
            dead: Mutex::new(VecDeque::with_capacity(RECENT_DEAD)),
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed))
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    pub(crate) fn uptime_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// An envelope was handed to node `node`.
    pub(crate) fn dispatched(&self, id: EnvelopeId, node: usize) {
        self.in_flight.lock().insert(id, (node, Instant::now()));
    }

    /// An envelope's outcome is published; returns how long it was in flight.
    pub(crate) fn finished(&self, id: &EnvelopeId) -> Option<std::time::Duration> {
        self.in_flight.lock().remove(id).map(|(_, at)| at.elapsed())
    }

    pub(crate) fn in_flight_count(&self) -> usize {
        self.in_flight.lock().len()
    }

    /// The envelopes in flight, oldest first, with their nodes named by `names`.
    pub(crate) fn in_flight(&self, names: &dyn Fn(usize) -> String) -> Vec<InFlight> {
        let mut out: Vec<InFlight> = self
            .in_flight
            .lock()
            .iter()
            .map(|(id, (node, at))| InFlight {
                envelope_id: *id,
                node: names(*node),
                seconds: at.elapsed().as_secs_f64(),
            })
            .collect();
        out.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        out
    }

    pub(crate) fn record(&self, outcome: RecentOutcome) {
        push_bounded(&self.recent, outcome, RECENT);
    }

    pub(crate) fn record_dead(&self, dead: RecentDeadLetter) {
        push_bounded(&self.dead, dead, RECENT_DEAD);
    }

    /// Newest first.
    pub(crate) fn recent(&self) -> Vec<RecentOutcome> {
        self.recent.lock().iter().rev().cloned().collect()
    }

    /// Newest first.
    pub(crate) fn recent_dead(&self) -> Vec<RecentDeadLetter> {
        self.dead.lock().iter().rev().cloned().collect()
    }
}

fn push_bounded<T>(ring: &Mutex<VecDeque<T>>, item: T, cap: usize) {
    let mut ring = ring.lock();
    if ring.len() == cap {
        ring.pop_front();
    }
    ring.push_back(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_keep_the_newest_and_list_them_first() {
        let a = Activity::new();
        for i in 0..(RECENT_DEAD + 5) {
            a.record_dead(RecentDeadLetter {
                envelope_id: None,
                original_topic: "t".into(),
                partition: 0,
                offset: i as u64,
                code: "X".into(),
                reason: String::new(),
                at: Timestamp::UNIX_EPOCH,
            });
        }
        let dead = a.recent_dead();
        assert_eq!(dead.len(), RECENT_DEAD);
        assert_eq!(dead[0].offset, (RECENT_DEAD + 4) as u64);
        assert_eq!(dead[RECENT_DEAD - 1].offset, 5);
    }

    #[test]
    fn in_flight_is_tracked_until_finished_and_phases_round_trip() {
        let a = Activity::new();
        let id = EnvelopeId(uuid::Uuid::nil());
        a.dispatched(id, 3);
        assert_eq!(a.in_flight_count(), 1);
        assert_eq!(a.in_flight(&|n| format!("node{n}"))[0].node, "node3");
        assert!(a.finished(&id).is_some());
        assert!(a.finished(&id).is_none());
        assert_eq!(a.in_flight_count(), 0);
        for p in [Phase::Starting, Phase::Ready, Phase::Draining, Phase::Stopped] {
            a.set_phase(p);
            assert_eq!(a.phase(), p);
        }
    }
}
