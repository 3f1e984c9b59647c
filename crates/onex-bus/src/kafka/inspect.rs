//! Reading a whole topic from the beginning, outside any consumer group's
//! progress: what `onex dlq list | show | replay` needs.
//!
//! The end of a topic is not taken from the high watermark (some brokers
//! report a stale one); reading stops once nothing new arrived for `idle`.

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
    for t in metadata.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(t.name(), p.id(), Offset::Beginning)
                .map_err(|e| BusError::Backend(format!("`{topic}` partition {}: {e}", p.id())))?;
        }
    }
    if tpl.count() == 0 {
        return Ok(Vec::new());
    }
    consumer.assign(&tpl).map_err(|e| BusError::Backend(format!("reading `{topic}` failed: {e}")))?;
    let mut out = Vec::new();
    let mut last = Instant::now();
    while out.len() < limit && last.elapsed() < idle {
        match consumer.poll(idle.saturating_sub(last.elapsed())) {
            Some(Ok(m)) => {
                last = Instant::now();
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
