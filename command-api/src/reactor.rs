//! The payment reactor: turns `PurchaseRequested` events into charges at the gateway and the
//! gateway's verdict into a `RecordAuthorization` or `RecordDecline` command.
//!
//! Delivery is at least once: offsets are committed after the command is on the commands topic,
//! so a crash in between charges again. That is harmless by construction: the charge carries
//! the purchase id as the gateway's idempotency key, and the command id derives from the
//! purchase id, so the decider answers a repeated command with its first verdict and writes
//! nothing new.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use domain::purchase::{self, PurchaseRequested, RecordAuthorization, RecordDecline};
use domain::{Command, Event};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use service_kit::kafka::envelope::message_type;
use service_kit::kafka::{Envelope, KafkaArgs, Topics};
use thiserror::Error;
use tracing::{info, warn};
use uuid::Uuid;

use crate::bus::{CommandBus, SubmitError};
use crate::payments::{Charge, ChargeOutcome, GatewayError, PaymentGateway};

/// The reactor's consumer group, under the topic prefix.
pub const GROUP: &str = "orderstream-payment-reactor";

/// Charges are independent, so a batch of them runs concurrently.
const BATCH_SIZE: usize = 500;
const BATCH_LINGER: Duration = Duration::from_millis(5);

/// Names the verdict command of a purchase, whichever verdict it is.
const VERDICT_NAMESPACE: Uuid = Uuid::from_u128(0x7061_796d_656e_742d_7665_7264_6963_7401);

#[derive(Debug, Error)]
pub enum ReactorError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

/// Where the reactor reads and in which group.
#[derive(Debug, Clone)]
pub struct ReactorSettings {
    pub kafka: KafkaArgs,
    pub topics: Topics,
    pub group: String,
}

/// Reacts until `shutdown` or the first error that needs a fresh start.
pub async fn run(
    settings: &ReactorSettings,
    bus: &CommandBus,
    gateway: &Arc<dyn PaymentGateway>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ReactorError> {
    // Offsets are stored only once a batch's commands are written, and auto-committed from there.
    let consumer: StreamConsumer = settings
        .kafka
        .consumer_config(&settings.group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "200")
        .create()?;
    consumer.subscribe(&[&settings.topics.events])?;
    info!(group = %settings.group, "payment reactor started");
    tokio::pin!(shutdown);
    loop {
        let first = tokio::select! {
            () = &mut shutdown => return Ok(()),
            message = consumer.recv() => message?.detach(),
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + BATCH_LINGER;
        while batch.len() < BATCH_SIZE {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(message) => batch.push(message?.detach()),
                Err(_elapsed) => break,
            }
        }
        // Only requested purchases matter here: skip the rest by header, without decoding them.
        let reactions = batch
            .iter()
            .filter(|message| message_type(*message) == Some(purchase::PURCHASE_REQUESTED_V1))
            .filter_map(|message| match Envelope::<Event>::from_kafka(message) {
                Ok(Envelope {
                    message: Event::Purchase(purchase::Event::PurchaseRequested(requested)),
                    correlation_id,
                    traceparent,
                    ..
                }) => Some(react(requested, correlation_id, traceparent, bus, gateway.as_ref())),
                Ok(_) => None,
                Err(err) => {
                    warn!(error = %err, "skipping an event that does not decode");
                    None
                }
            });
        futures::future::try_join_all(reactions).await?;
        let next_offsets: BTreeMap<i32, i64> = batch.iter().map(|m| (m.partition(), m.offset() + 1)).collect();
        let mut done = TopicPartitionList::new();
        for (partition, next) in next_offsets {
            done.add_partition_offset(&settings.topics.events, partition, Offset::Offset(next))?;
        }
        consumer.store_offsets(&done)?;
    }
}

/// Charges one requested purchase and submits the verdict.
#[tracing::instrument(skip_all, fields(purchase_id = %requested.purchase_id))]
async fn react(
    requested: PurchaseRequested,
    correlation_id: Uuid,
    traceparent: Option<String>,
    bus: &CommandBus,
    gateway: &dyn PaymentGateway,
) -> Result<(), ReactorError> {
    let charge = Charge {
        payment_token: requested.payment_token.clone(),
        amount: requested.amount,
        idempotency_key: requested.purchase_id,
    };
    let outcome = charge_patiently(gateway, &charge).await;
    let now = Utc::now();
    let command = match outcome {
        ChargeOutcome::Authorized { authorization_id } => purchase::Command::RecordAuthorization(RecordAuthorization {
            purchase_id: requested.purchase_id,
            authorization_id,
            authorized_at: now,
        }),
        ChargeOutcome::Declined { reason } => purchase::Command::RecordDecline(RecordDecline {
            purchase_id: requested.purchase_id,
            reason,
            declined_at: now,
        }),
    };
    let envelope = Envelope {
        id: Uuid::new_v5(&VERDICT_NAMESPACE, requested.purchase_id.as_bytes()),
        time: now,
        sequence: None,
        causation_id: None,
        correlation_id,
        traceparent,
        message: Command::Purchase(command),
    };
    bus.send(&envelope).await?;
    Ok(())
}

/// Retries an unavailable gateway with backoff; a refusal becomes a decline, since no retry
/// will change it.
async fn charge_patiently(gateway: &dyn PaymentGateway, charge: &Charge) -> ChargeOutcome {
    let mut backoff = Duration::from_millis(200);
    loop {
        match gateway.charge(charge).await {
            Ok(outcome) => return outcome,
            Err(GatewayError::Refused(reason)) => {
                warn!(%reason, "gateway refused the charge");
                return ChargeOutcome::Declined {
                    reason: "gateway_refused".to_owned(),
                };
            }
            Err(GatewayError::Unavailable(reason)) => {
                warn!(%reason, retry_in = ?backoff, "gateway unavailable; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
