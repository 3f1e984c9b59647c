//! The producer side: one idempotent librdkafka producer per bus, behind a
//! circuit breaker. `publish` returns only once the broker acknowledged the
//! record (acks=all by default), which is what lets the host ack its input.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use parking_lot::Mutex;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tracing::{info, warn};

use super::breaker::{BreakerState, ProducerBreaker};
use super::health::{BusEvent, ClientContext, Health};
use crate::{BusError, Message};

pub(crate) struct Producer {
    client: FutureProducer<ClientContext>,
    breaker: Mutex<ProducerBreaker>,
    health: Arc<Health>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("breaker", &*self.breaker.lock()).finish_non_exhaustive()
    }
}

impl Producer {
    pub(crate) fn new(client: FutureProducer<ClientContext>, breaker: ProducerBreaker, health: Arc<Health>) -> Self {
        Self { client, breaker: Mutex::new(breaker), health }
    }

    pub(crate) fn client(&self) -> &FutureProducer<ClientContext> {
        &self.client
    }

    pub(crate) fn breaker_state(&self) -> BreakerState {
        self.breaker.lock().state(Instant::now())
    }

    /// Publishes one message and waits for the broker's acknowledgement.
    pub(crate) async fn send(&self, message: &Message) -> Result<(), BusError> {
        self.admit()?;
        let mut record = FutureRecord::to(message.topic.as_str()).payload(message.payload.as_ref());
        if let Some(key) = &message.key {
            record = record.key(key.as_ref());
        }
        if !message.headers.is_empty() {
            let headers = message
                .headers
                .iter()
                .fold(OwnedHeaders::new_with_capacity(message.headers.len()), |h, (key, value)| {
                    h.insert(Header { key, value: Some(value.as_ref()) })
                });
            record = record.headers(headers);
        }
        // `message.timeout.ms` bounds the whole send, retries included.
        let result = self.client.send(record, Timeout::Never).await;
        let ok = result.is_ok();
        self.settle(ok);
        result.map(|_| ()).map_err(|(e, _)| BusError::Backend(format!("publishing to `{}` failed: {e}", message.topic)))
    }

    /// Publishes every message, all in flight at once; order per partition is kept
    /// because records are enqueued in order.
    pub(crate) async fn send_all(&self, messages: &[Message]) -> Result<(), BusError> {
        let results = join_all(messages.iter().map(|m| self.send(m))).await;
        results.into_iter().collect()
    }

    fn admit(&self) -> Result<(), BusError> {
        let now = Instant::now();
        let mut breaker = self.breaker.lock();
        if breaker.try_acquire(now) {
            Ok(())
        } else {
            Err(BusError::Backend(format!(
                "the Kafka producer circuit is open after repeated publish failures; next attempt in {:.1}s",
                breaker.retry_in(now).as_secs_f64()
            )))
        }
    }

    fn settle(&self, ok: bool) {
        let changed = self.breaker.lock().record(ok, Instant::now());
        if let Some(state) = changed {
            match state {
                BreakerState::Open => {
                    warn!("Kafka producer circuit opened; publishes fail fast until a probe succeeds.")
                }
                BreakerState::Closed => info!("Kafka producer circuit closed; publishing again."),
                BreakerState::HalfOpen => {}
            }
            self.health.emit(BusEvent::ProducerBreaker(state));
        }
        if ok {
            self.health.broker_reachable();
        }
    }
}
