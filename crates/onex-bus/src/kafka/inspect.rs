//! Reading a whole topic from the beginning, outside any consumer group's
//! progress: what `onex dlq list | show | replay` needs.
//!
//! The high watermark is only a lower bound of the end (some brokers report
//! the start of the last batch + 1): reading goes on at least up to it on
//! every partition, then until nothing new arrived for `idle`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use onex_core::TopicName;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::BusError;

/// One record read back from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Bytes>,
    pub payload: Bytes,
    pub headers: Vec<(String, Bytes)>,
    /// Broker or producer timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
}

pub(crate) fn read_topic(
    config: &ClientConfig,
    topic: &TopicName,
    limit: usize,
    idle: Duration,
    timeout: Duration,
) -> Result<Vec<Record>, BusError> {
    let mut config = config.clone();
    // Read only: never commit, never join the group's assignment.
    config.set("enable.auto.commit", "false");
    let consumer: BaseConsumer =
        config.create().map_err(|e| BusError::Backend(format!("creating a Kafka reader failed: {e}")))?;
    let metadata = consumer
        .fetch_metadata(Some(topic.as_str()), timeout)
        .map_err(|e| BusError::Backend(format!("reading metadata of `{topic}` failed: {e}")))?;
    let mut tpl = TopicPartitionList::new();
    // Per partition, the last offset known to exist: reading stops only after it.
    let mut pending: HashMap<i32, i64> = HashMap::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            let (low, high) = consumer.fetch_watermarks(t.name(), p.id(), timeout).map_err(|e| {
                BusError::Backend(format!("reading the offsets of `{topic}` partition {}: {e}", p.id()))
            })?;
            if high > low {
                pending.insert(p.id(), high - 1);
                tpl.add_partition_offset(t.name(), p.id(), Offset::Beginning)
                    .map_err(|e| BusError::Backend(format!("`{topic}` partition {}: {e}", p.id())))?;
            }
        }
    }
    if tpl.count() == 0 {
        return Ok(Vec::new());
    }
    consumer.assign(&tpl).map_err(|e| BusError::Backend(format!("reading `{topic}` failed: {e}")))?;
    let mut out = Vec::new();
    let started = Instant::now();
    let mut last = Instant::now();
    while out.len() < limit && (!pending.is_empty() || last.elapsed() < idle) {
        if started.elapsed() > timeout {
            return Err(BusError::Backend(format!(
                "reading `{topic}` timed out after {:.0}s with {} record(s) read; partitions {:?} did not reach their end",
                timeout.as_secs_f64(),
                out.len(),
                pending.keys().collect::<Vec<_>>()
            )));
        }
        match consumer.poll(idle.saturating_sub(last.elapsed()).max(Duration::from_millis(10))) {
            Some(Ok(m)) => {
                last = Instant::now();
                if pending.get(&m.partition()).is_some_and(|end| m.offset() >= *end) {
                    pending.remove(&m.partition());
                }
                out.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(Bytes::copy_from_slice),
                    payload: Bytes::copy_from_slice(m.payload().unwrap_or_default()),
                    headers: m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| (h.key.to_owned(), Bytes::copy_from_slice(h.value.unwrap_or_default())))
                                .collect()
                        })
                        .unwrap_or_default(),
                    timestamp_ms: m.timestamp().to_millis(),
                });
            }
            Some(Err(e)) => return Err(BusError::Backend(format!("reading `{topic}` failed: {e}"))),
            None => {}
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    Ok(out)
}
