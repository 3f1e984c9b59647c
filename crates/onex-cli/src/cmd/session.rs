//! What `dev` and `send` share: start a host from a contract, connect a
//! client to it, and pump envelopes through it until every one is answered.

use std::path::Path;
use std::sync::Arc;

use onex_core::{Envelope, SystemClock, TopicName, UuidV7Ids};
use onex_runtime::{Client, Outcome, RunningHost, RuntimeHost};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::{contract, input};

/// Where the envelopes to send come from.
pub enum Input {
    /// Already built.
    List(Vec<Envelope>),
    /// One per stdin line (see [`input::parse_line`]).
    Stdin,
}

/// What the producer task reports to the pump.
enum Event {
    Sent(Box<Envelope>),
    Rejected(String),
    Done,
}

/// A running host, a client connected to its outputs, and the topic to send to.
pub struct Session {
    pub host: RunningHost,
    client: Client,
    topic: TopicName,
}

impl Session {
    /// Loads and starts `path`. Prints what went wrong and returns `None` on failure.
    pub async fn start(path: &Path, topic: Option<&str>, group: &str) -> Option<Self> {
        let loaded = contract::load(path)?;
        let convention = loaded.contract.runtime.topic_convention;
        let host = RuntimeHost::builder()
            .contract(loaded.contract)
            .build()
            .await
            .map_err(|e| contract::report_host_error(&e))
            .ok()?;
        let host = host.start().await.map_err(|e| contract::report_host_error(&e)).ok()?;
        let outputs = host.output_topics();
        let dlq = vec![host.dlq_topic().clone()];
        let client = Client::connect(Arc::clone(host.bus()), group, &outputs, &dlq)
            .await
            .map_err(|e| eprintln!("error: {e}"))
            .ok()?;
        let topic = match topic {
            Some(raw) => TopicName::parse(raw, convention)
                .map_err(|e| eprintln!("error: --topic: {e}\n  = hint: {}", e.hint(convention)))
                .ok()?,
            None => host.input_topics().into_iter().next()?,
        };
        Some(Self { host, client, topic })
    }

    /// The topic envelopes are sent to.
    pub fn topic(&self) -> &TopicName {
        &self.topic
    }

    /// Sends every envelope of `input` and hands each outcome to `on_outcome`,
    /// returning when input is exhausted and every sent envelope was answered.
    /// Sending runs in its own task so a full outcome queue can never block it.
    pub async fn pump(
        &mut self,
        input: Input,
        on_sent: impl Fn(&TopicName, &Envelope),
        mut on_outcome: impl FnMut(&Outcome),
    ) {
        let (tx, mut events) = mpsc::channel::<Event>(256);
        let sender = self.client.sender();
        let topic = self.topic.clone();
        let producer = tokio::spawn(async move {
            let ids = UuidV7Ids;
            let clock = SystemClock::new();
            let send = async |envelope: Envelope| match sender.send(&topic, &envelope).await {
                Ok(()) => tx.send(Event::Sent(Box::new(envelope))).await.is_ok(),
                Err(e) => tx.send(Event::Rejected(format!("could not send: {e}"))).await.is_ok(),
            };
            match input {
                Input::List(list) => {
                    for envelope in list {
                        if !send(envelope).await {
                            return;
                        }
                    }
                }
                Input::Stdin => {
                    let mut lines = BufReader::new(tokio::io::stdin()).lines();
                    let mut n = 0usize;
                    loop {
                        let line = match lines.next_line().await {
                            Ok(Some(line)) => line,
                            Ok(None) => break,
                            Err(e) => {
                                let _ = tx.send(Event::Rejected(format!("reading stdin: {e}"))).await;
                                break;
                            }
                        };
                        n += 1;
                        let delivered = match input::parse_line(&line, &ids, &clock) {
                            Ok(Some(envelope)) => send(envelope).await,
                            Ok(None) => true,
                            Err(e) => tx.send(Event::Rejected(format!("stdin line {n}: {e}"))).await.is_ok(),
                        };
                        if !delivered {
                            return;
                        }
                    }
                }
            }
            let _ = tx.send(Event::Done).await;
        });
        let mut producing = true;
        // Sent minus answered. Signed: an answer can arrive before the pump has
        // seen the producer's "sent" event for it.
        let mut pending: i64 = 0;
        while producing || pending > 0 {
            tokio::select! {
                event = events.recv(), if producing => match event {
                    Some(Event::Sent(envelope)) => {
                        pending += 1;
                        on_sent(&self.topic, &envelope);
                    }
                    Some(Event::Rejected(why)) => eprintln!("error: {why}"),
                    Some(Event::Done) | None => producing = false,
                },
                outcome = self.client.next() => match outcome {
                    Some(Ok(outcome)) => {
                        // Every sent envelope ends in exactly one response or, when it
                        // could not be answered, one dead-letter record; a record next
                        // to an error response is extra information, not the outcome.
                        let answers = match &outcome {
                            Outcome::DeadLetter { record, .. } => !record.error_response_sent,
                            _ => true,
                        };
                        if answers {
                            pending -= 1;
                        }
                        on_outcome(&outcome);
                    }
                    Some(Err(e)) => eprintln!("error: {e}"),
                    None => break,
                },
            }
        }
        // A dead-letter record is published before its error response, so any
        // record that belongs to an answered envelope is already queued: take
        // what is ready without waiting (a zero timeout polls once).
        while let Ok(Some(Ok(outcome))) = tokio::time::timeout(std::time::Duration::ZERO, self.client.next()).await {
            on_outcome(&outcome);
        }
        let _ = producer.await;
    }
}
