//! onex as a library: a node written in Rust, registered in code, hosted
//! beside a contract-free EFFECT node on the in-memory bus.
//!
//! Run: `cargo run -p onex-runtime --example rust_node`

use std::sync::Arc;

use async_trait::async_trait;
use onex_core::contract::Environment;
use onex_core::{Envelope, ErrorCode, Operation, RuntimeError, SystemClock, UuidV7Ids};
use onex_handlers::LocalHandler;
use onex_runtime::{Client, EffectNode, Node, NodeOptions, Outcome, RuntimeHost};
use serde_json::{Value, json};

/// Computes an order total from its lines. A domain refusal is an error with a permanent class.
#[derive(Debug)]
struct OrderTotal;

#[async_trait]
impl Node for OrderTotal {
    fn operations(&self) -> Vec<Operation> {
        vec![Operation::from("orders.total")]
    }

    async fn process(&self, envelope: &Envelope) -> Result<Value, RuntimeError> {
        let lines = envelope.payload["lines"].as_array().ok_or_else(|| {
            RuntimeError::new(
                ErrorCode::EnvelopeValidation,
                "payload needs `lines`: [{\"qty\": n, \"price_cents\": n}]",
            )
        })?;
        let total: i64 =
            lines.iter().map(|l| l["qty"].as_i64().unwrap_or(0) * l["price_cents"].as_i64().unwrap_or(0)).sum();
        Ok(json!({ "total_cents": total }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let local = Arc::new(LocalHandler::new(Environment::Dev)?);
    let host = RuntimeHost::builder()
        .topics("onex.acme.orders.cmd.v1".parse()?, "onex.acme.orders.evt.v1".parse()?)
        .handler("local", local.clone())
        .node("orders", Arc::new(OrderTotal), NodeOptions::default())
        .node("echo", Arc::new(EffectNode::builder().route("local.echo", local).build()), NodeOptions::default())
        .build()
        .await?;
    let running = host.start().await?;
    let mut client =
        Client::connect(Arc::clone(running.bus()), "example", &running.output_topics(), &[running.dlq_topic().clone()])
            .await?;

    let order = Envelope::command(
        &UuidV7Ids,
        &SystemClock::new(),
        "orders.total",
        json!({"lines": [{"qty": 2, "price_cents": 450}, {"qty": 1, "price_cents": 1299}]}),
    );
    client.sender().send(&running.input_topics()[0], &order).await?;
    if let Some(Ok(Outcome::Response { envelope, .. })) = client.next().await {
        println!("{}", serde_json::to_string_pretty(&*envelope)?);
    }
    running.shutdown().await;
    Ok(())
}
