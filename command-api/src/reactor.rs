//! The reactor, where events lead to commands: the payments, and the stock reservation saga.
//!
//! Payments: it turns `PurchaseRequested` events into charges at the gateway and the
//! gateway's verdict into a `RecordAuthorization` or `RecordDecline` command, turns
//! `PurchaseRefundRequested` into a refund at the gateway and then a `RecordRefund` command, and
//! links payments to orders: a purchase carrying an `order_id` records its authorization, decline or refund on
//! that order, and cancelling a paid order requests the refund of its purchase. A payment the order
//! cannot keep (it was cancelled, or the amount is not its total) is recorded on the order as a
//! failed payment with what it paid, and the reactor requests the refund of all of it, giving the
//! order's reason. A payment or
//! payment failure names the purchase's buyer as its payer: the order refuses it (`NotOwner`) when
//! the buyer is not the order's owner, so another user's purchase leaves the order unchanged.
//!
//! The stock reservation saga ([`domain::reservation`]) is a pure function from an event to
//! commands: it reserves an order's catalog items on their products, records each outcome on the
//! order, and gives the stock back or ships it when the order is cancelled or shipped.
//!
//! Delivery is at least once: offsets are committed after the command is on the commands topic,
//! so a crash in between charges (or refunds) again. That is harmless by construction: the charge
//! carries the purchase id as the gateway's idempotency key and a refund its refund id, and the
//! command id derives from the same id, so the decider answers a repeated command with its first
//! verdict and writes nothing new.
//!
//! A reactor that (re)starts reads again what its group had not committed, and a fresh group
//! reads the whole log: before it charges anything of a newly assigned partition it scans that
//! partition ahead, from where it resumes to the end (`settled`), for the purchases already
//! authorized or declined, the refunds already recorded and the orders whose stock is already
//! reserved, given back or shipped, and skips their requests. A purchase's events share its partition, so
//! a settlement written after the scan is read before anything that could depend on it.
//!
//! An event that does not decode (or has no `ce_type`) is logged, counted and skipped: it holds
//! up neither its partition nor the rest of its batch.

mod settled;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::money::{Decimal, Money};
use domain::order::{self, PaymentFailureReason, RecordPayment, RecordPaymentFailure, RecordRefund};
use domain::purchase::{
    self, PurchaseRefundRequested, PurchaseRequested, RecordAuthorization, RecordDecline, RefundPurchase, RefundReason,
};
use domain::{reservation, Command, Event, Message as _};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use service_kit::kafka::envelope::message_type;
use service_kit::kafka::{Envelope, KafkaArgs, Topics};
use service_kit::stream::{Backoff, Batching, CancellationToken};
use thiserror::Error;
use tracing::{info, info_span, warn, Instrument};
use uuid::Uuid;

use crate::bus::{KafkaBus, SubmitError};
use crate::payments::{Charge, ChargeOutcome, GatewayError, PaymentGateway, Refund};
use service_kit::kafka::ownership::Ownership;
use settled::Settled;

/// The reactor's consumer group, under the topic prefix.
pub const GROUP: &str = "orderstream-payment-reactor";

/// The event types the payments act on; the stock saga's are [`reservation::REACTS_TO`].
const PAYMENTS_REACT_TO: [&str; 9] = [
    purchase::PURCHASE_REQUESTED_V1,
    purchase::PURCHASE_REFUND_REQUESTED_V1,
    purchase::PURCHASE_AUTHORIZED_V2,
    purchase::PURCHASE_DECLINED_V2,
    purchase::PURCHASE_AUTHORIZED_V1,
    purchase::PURCHASE_DECLINED_V1,
    purchase::PURCHASE_REFUNDED_V1,
    order::ORDER_CANCELLED_V1,
    order::ORDER_PAYMENT_FAILED_V1,
];

/// Names the order-side commands a payment event leads to.
const ORDER_LINK_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_722d_7061_796d_656e_742d_6c6b);

/// Charges are independent, so a batch of them runs concurrently.
const BATCHING: Batching = Batching::new(500, Duration::from_millis(5));
/// How long to wait for an unavailable gateway before charging again.
const GATEWAY_BACKOFF: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));

/// Names the verdict command of a purchase, whichever verdict it is.
const VERDICT_NAMESPACE: Uuid = Uuid::from_u128(0x7061_796d_656e_742d_7665_7264_6963_7401);
/// Names the command recording a refund the gateway paid back.
const REFUND_RECORD_NAMESPACE: Uuid = Uuid::from_u128(0x7265_6675_6e64_2d72_6563_6f72_642d_0001);

#[derive(Debug, Error)]
pub enum ReactorError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// Scanning a partition for settled purchases made no progress for this long.
    #[error("scanning partition {partition} of {topic} for settled purchases stalled for {stalled:?}")]
    ScanStalled {
        topic: String,
        partition: i32,
        stalled: Duration,
    },
}

/// Where the reactor reads and in which group.
#[derive(Debug, Clone)]
pub struct ReactorSettings {
    pub kafka: KafkaArgs,
    pub topics: Topics,
    pub group: String,
}

service_kit::metric_set! {
    /// Counts that `/metrics` reports.
    pub struct ReactorMetrics {
        undecodable_events: Counter(
            "orderstream_reactor_undecodable_events_total",
            "Events the payment reactor skipped because they did not decode",
        ),
        skipped_settled: Counter(
            "orderstream_reactor_skipped_settled_total",
            "Requests the payment reactor read again and did not pass to the gateway: purchases already authorized or declined, refunds already recorded",
        ),
        refunds_refused: Counter(
            "orderstream_reactor_refunds_refused_total",
            "Refunds the payment gateway refused; their amounts stay set aside on the purchase",
        ),
        reaction_seconds: Histogram(
            "orderstream_reactor_reaction_seconds",
            "How long the reactor took from reading an event it reacts to until its commands were sent (gateway calls included)",
        ),
        charge_seconds: Histogram(
            "orderstream_gateway_charge_seconds",
            "How long the payment gateway took to answer a charge, retries included",
        ),
        refund_seconds: Histogram(
            "orderstream_gateway_refund_seconds",
            "How long the payment gateway took to answer a refund, retries included",
        ),
    }
}

/// Reacts until `shutdown` (after the batch in hand) or the first error that needs a fresh
/// start.
pub async fn run(
    settings: &ReactorSettings,
    metrics: &ReactorMetrics,
    bus: &KafkaBus,
    gateway: &Arc<dyn PaymentGateway>,
    shutdown: &CancellationToken,
) -> Result<(), ReactorError> {
    // Offsets are stored only once a batch's commands are written, and auto-committed from there.
    let consumer: StreamConsumer<Ownership> = settings
        .kafka
        .member_config(&settings.group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "200")
        .create_with_context(Ownership::unpaused())?;
    consumer.subscribe(&[&settings.topics.events])?;
    info!(group = %settings.group, "payment reactor started");
    let recv = || async {
        service_kit::kafka::recv(&consumer)
            .await
            .map(|message| message.detach())
    };
    let mut settled = Settled::default();
    loop {
        let Some(batch) = shutdown.run_until_cancelled(BATCHING.next(recv)).await else {
            return Ok(());
        };
        let batch: Vec<OwnedMessage> = batch?;
        settled.follow(consumer.context().take_changes());
        settled
            .scan_ahead(&settings.kafka, &settings.topics.events, &batch)
            .await?;
        // Only a few event types matter here: skip the rest by header, without decoding them.
        let events = batch.iter().filter_map(|message| {
            if settled.passes(message) {
                metrics.skipped_settled.increment(1);
                return None;
            }
            let decoded = match message_type(message) {
                Some(event_type)
                    if !PAYMENTS_REACT_TO.contains(&event_type) && !reservation::REACTS_TO.contains(&event_type) =>
                {
                    return None
                }
                Some(_) => Envelope::<Event>::from_kafka(message),
                None => Err(service_kit::kafka::Error::MissingHeader {
                    topic: message.topic().to_owned(),
                    partition: message.partition(),
                    offset: message.offset(),
                    header: "ce_type",
                }),
            };
            decoded
                .inspect_err(|err| {
                    metrics.undecodable_events.increment(1);
                    warn!(error = %err, "skipping an event that does not decode");
                })
                .ok()
        });
        let reactions = events.map(|envelope| {
            let span = envelope
                .trace
                .child_span(|| info_span!("react", event_id = %envelope.id, event = envelope.message.message_type()));
            react(envelope, metrics, bus, gateway.as_ref(), shutdown).instrument(span)
        });
        let reacted = futures::future::try_join_all(reactions).await?;
        if reacted.contains(&false) {
            // A gateway call given up at shutdown sent no command: the batch is read again at the next start.
            return Ok(());
        }
        let next_offsets: BTreeMap<i32, i64> = batch.iter().map(|m| (m.partition(), m.offset() + 1)).collect();
        let mut done = TopicPartitionList::new();
        for (partition, next) in next_offsets {
            done.add_partition_offset(&settings.topics.events, partition, Offset::Offset(next))?;
        }
        consumer.store_offsets(&done)?;
    }
}

/// Sends the commands `envelope` leads to, if any; false when a gateway call was given up at
/// shutdown (and nothing was sent).
async fn react(
    envelope: Envelope<Event>,
    metrics: &ReactorMetrics,
    bus: &KafkaBus,
    gateway: &dyn PaymentGateway,
    shutdown: &CancellationToken,
) -> Result<bool, ReactorError> {
    let started = Instant::now();
    let Envelope {
        id: event_id,
        message,
        correlation_id,
        trace,
        ..
    } = envelope;
    let mut commands = reservation::react(event_id, &message);
    match pay(message, metrics, gateway, shutdown).await {
        Some(payment) => commands.extend(payment),
        None => return Ok(false),
    }
    for (command_id, command) in commands {
        let command = Envelope {
            id: command_id,
            time: Utc::now(),
            sequence: None,
            causation_id: None,
            correlation_id,
            trace: trace.clone(),
            message: command,
        };
        bus.send(&command, None).await?;
    }
    metrics.reaction_seconds.record(started.elapsed());
    Ok(true)
}

/// The payment command `event` leads to, if any; `None` when a gateway call was given up at
/// shutdown.
async fn pay(
    event: Event,
    metrics: &ReactorMetrics,
    gateway: &dyn PaymentGateway,
    shutdown: &CancellationToken,
) -> Option<Option<(Uuid, Command)>> {
    match event {
        Event::Purchase(purchase::Event::PurchaseRequested(requested)) => {
            let started = Instant::now();
            let recorded = charge_and_record(requested, gateway, shutdown).await?;
            metrics.charge_seconds.record(started.elapsed());
            Some(Some(recorded))
        }
        Event::Purchase(purchase::Event::PurchaseRefundRequested(requested)) => {
            let started = Instant::now();
            let recorded = refund_and_record(&requested, gateway, shutdown).await?;
            metrics.refund_seconds.record(started.elapsed());
            if recorded.is_none() {
                metrics.refunds_refused.increment(1);
            }
            Some(recorded)
        }
        other => Some(link_to_order(&other)),
    }
}

/// Charges one requested purchase; returns the verdict command and its id, or `None` when
/// shut down while the gateway was unavailable.
#[tracing::instrument(skip_all, fields(purchase_id = %requested.purchase_id))]
async fn charge_and_record(
    requested: PurchaseRequested,
    gateway: &dyn PaymentGateway,
    shutdown: &CancellationToken,
) -> Option<(Uuid, Command)> {
    let charge = Charge {
        payment_token: requested.payment_token.clone(),
        amount: requested.amount,
        idempotency_key: requested.purchase_id,
    };
    let outcome = charge_patiently(gateway, &charge, shutdown).await?;
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
    let command_id = Uuid::new_v5(&VERDICT_NAMESPACE, requested.purchase_id.as_bytes());
    Some((command_id, Command::Purchase(command)))
}

/// Has the gateway pay back one requested refund; returns the command recording it and its id,
/// `Some(None)` when the gateway refused it (logged: an operator's matter, as no retry changes a
/// refusal), or `None` when shut down while the gateway was unavailable.
#[tracing::instrument(skip_all, fields(purchase_id = %requested.purchase_id, refund_id = %requested.refund_id))]
async fn refund_and_record(
    requested: &PurchaseRefundRequested,
    gateway: &dyn PaymentGateway,
    shutdown: &CancellationToken,
) -> Option<Option<(Uuid, Command)>> {
    let refund = Refund {
        refund_id: requested.refund_id,
        charge_key: requested.purchase_id,
        amount: requested.amount,
    };
    let attempt = || async {
        match gateway.refund(&refund).await {
            Err(GatewayError::Refused(reason)) => Ok(Err(reason)),
            answered => answered.map(Ok),
        }
    };
    match GATEWAY_BACKOFF.retry("payment gateway", shutdown, attempt).await? {
        Ok(refunded) => {
            info!(reference = %refunded.reference, "refund paid back");
            let command = purchase::Command::RecordRefund(purchase::RecordRefund {
                purchase_id: requested.purchase_id,
                refund_id: requested.refund_id,
                refunded_at: Utc::now(),
            });
            let command_id = Uuid::new_v5(&REFUND_RECORD_NAMESPACE, requested.refund_id.as_bytes());
            Some(Some((command_id, Command::Purchase(command))))
        }
        Err(reason) => {
            tracing::error!(%reason, "the gateway refused the refund; its amount stays set aside");
            Some(None)
        }
    }
}

/// The other aggregate's consequence of a payment event, with a command id derived from the
/// event so a redelivery repeats the same command. Pure: time comes from the event.
fn link_to_order(event: &Event) -> Option<(Uuid, Command)> {
    match event {
        Event::Purchase(event) => {
            let (command_id, command) = record_on_order(event)?;
            Some((command_id, Command::Order(command)))
        }
        // A failed payment that names an amount took money the order does not keep: return all of it.
        Event::Order(order::Event::OrderPaymentFailed(failed)) => pay_back(
            ["return", "return-id"],
            failed.order_id,
            failed.purchase_id,
            failed.amount?,
            failed.reason.as_str(),
            failed.failed_at,
        ),
        Event::Order(order::Event::OrderCancelled(cancelled)) => pay_back(
            ["refund", "refund-id"],
            cancelled.order_id,
            cancelled.refund_requested_for?,
            cancelled.refund_amount?,
            "order cancelled",
            cancelled.cancelled_at,
        ),
        _ => None,
    }
}

/// What a purchase's verdict or refund records on the order it pays, if it pays one.
fn record_on_order(event: &purchase::Event) -> Option<(Uuid, order::Command)> {
    Some(match event {
        purchase::Event::PurchaseAuthorized(authorized) => (
            link_id(&[&authorized.purchase_id], "payment"),
            order::Command::RecordPayment(RecordPayment {
                order_id: authorized.order_id?,
                purchase_id: authorized.purchase_id,
                amount: authorized.amount?,
                expected_version: None,
                paid_at: authorized.authorized_at,
                payer: authorized.user_id,
            }),
        ),
        purchase::Event::PurchaseDeclined(declined) => {
            let reason = PaymentFailureReason::parse(&declined.reason)
                .or_else(|_| PaymentFailureReason::parse("declined"))
                .ok()?;
            let command = order::Command::RecordPaymentFailure(RecordPaymentFailure {
                order_id: declined.order_id?,
                purchase_id: declined.purchase_id,
                reason,
                expected_version: None,
                failed_at: declined.declined_at,
                payer: declined.user_id,
            });
            (link_id(&[&declined.purchase_id], "payment"), command)
        }
        purchase::Event::PurchaseRefunded(refunded) => (
            link_id(&[&refunded.refund_id], "refunded"),
            order::Command::RecordRefund(RecordRefund {
                order_id: refunded.order_id?,
                purchase_id: refunded.purchase_id,
                expected_version: None,
                refunded_at: refunded.refunded_at,
            }),
        ),
        _ => return None,
    })
}

/// An id named `what` and derived from `parts`: the same for every delivery of one event.
fn link_id(parts: &[&Uuid], what: &str) -> Uuid {
    let mut name = what.as_bytes().to_vec();
    for part in parts {
        name.extend_from_slice(part.as_bytes());
    }
    Uuid::new_v5(&ORDER_LINK_NAMESPACE, &name)
}

/// The refund of `amount` that order `order_id` does not keep of purchase `purchase_id`, for
/// `reason`. The ids of the command and of the refund are named `[command_name, refund_name]` and
/// derived from both, so a redelivery asks for the same refund again.
fn pay_back(
    [command_name, refund_name]: [&str; 2],
    order_id: Uuid,
    purchase_id: Uuid,
    amount: Money,
    reason: &str,
    requested_at: DateTime<Utc>,
) -> Option<(Uuid, Command)> {
    let parts = [&order_id, &purchase_id];
    let command = purchase::Command::RefundPurchase(RefundPurchase {
        purchase_id,
        refund_id: link_id(&parts, refund_name),
        amount: Decimal::parse("amount", &amount.to_decimal_string()).ok()?,
        reason: RefundReason::parse(reason).ok()?,
        requested_at,
    });
    Some((link_id(&parts, command_name), Command::Purchase(command)))
}

/// Retries an unavailable gateway with backoff until `shutdown`; a refusal becomes a decline,
/// since no retry will change it.
async fn charge_patiently(
    gateway: &dyn PaymentGateway,
    charge: &Charge,
    shutdown: &CancellationToken,
) -> Option<ChargeOutcome> {
    let attempt = || async {
        match gateway.charge(charge).await {
            Err(GatewayError::Refused(reason)) => {
                warn!(%reason, "gateway refused the charge");
                Ok(ChargeOutcome::Declined {
                    reason: "gateway_refused".to_owned(),
                })
            }
            answered => answered,
        }
    };
    GATEWAY_BACKOFF.retry("payment gateway", shutdown, attempt).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::money::{Currency, Money};
    use domain::order::{CancelReason, OrderCancelled, OrderPaymentFailed};
    use domain::purchase::PurchaseAuthorized;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::parse("currency", "USD").unwrap()).unwrap()
    }

    fn authorized(order_id: Option<Uuid>) -> Event {
        Event::Purchase(purchase::Event::PurchaseAuthorized(PurchaseAuthorized {
            purchase_id: Uuid::from_u128(1),
            authorization_id: "auth_1".to_owned(),
            authorized_at: "2025-01-19T15:04:07Z".parse().unwrap(),
            order_id,
            amount: Some(usd(4204)),
            user_id: Some(Uuid::from_u128(3)),
        }))
    }

    #[test]
    fn an_authorized_purchase_pays_its_order_with_a_repeatable_command() {
        let order_id = Uuid::from_u128(2);
        let (id, command) = link_to_order(&authorized(Some(order_id))).unwrap();
        assert_eq!(
            link_to_order(&authorized(Some(order_id))).unwrap().0,
            id,
            "same event, same command id"
        );
        match command {
            Command::Order(order::Command::RecordPayment(payment)) => {
                assert_eq!(payment.order_id, order_id);
                assert_eq!(payment.amount, usd(4204));
                assert_eq!(payment.payer, Some(Uuid::from_u128(3)), "the buyer pays");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            link_to_order(&authorized(None)).is_none(),
            "a purchase for no order touches no order"
        );
    }

    /// The refund `event` asks for, under the same command id however often it is delivered.
    fn refund_linked_to(event: &Event) -> RefundPurchase {
        let (id, command) = link_to_order(event).unwrap();
        assert_eq!(link_to_order(event).unwrap().0, id, "same event, same command id");
        match command {
            Command::Purchase(purchase::Command::RefundPurchase(refund)) => refund,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn cancelling_a_paid_order_refunds_what_its_purchase_paid() {
        let cancelled = |refund: Option<Uuid>| {
            Event::Order(order::Event::OrderCancelled(OrderCancelled {
                order_id: Uuid::from_u128(2),
                reason: CancelReason::parse("changed my mind").unwrap(),
                refund_requested_for: refund,
                refund_amount: refund.map(|_| usd(4204)),
                cancelled_at: "2025-01-19T16:00:00Z".parse().unwrap(),
                stock_released: None,
            }))
        };
        let refund = refund_linked_to(&cancelled(Some(Uuid::from_u128(1))));
        assert_eq!(refund.purchase_id, Uuid::from_u128(1));
        assert_eq!(refund.amount.to_string(), "42.04");
        assert!(
            link_to_order(&cancelled(None)).is_none(),
            "an unpaid order needs no refund"
        );
    }

    #[test]
    fn a_payment_the_order_does_not_keep_is_refunded_in_full_with_its_reason() {
        let failed = |reason: &str, amount: Option<Money>| {
            Event::Order(order::Event::OrderPaymentFailed(OrderPaymentFailed {
                order_id: Uuid::from_u128(2),
                purchase_id: Uuid::from_u128(1),
                reason: PaymentFailureReason::parse(reason).unwrap(),
                amount,
                failed_at: "2025-01-19T16:00:00Z".parse().unwrap(),
            }))
        };
        for reason in [order::ORDER_CANCELLED, order::AMOUNT_MISMATCH] {
            let refund = refund_linked_to(&failed(reason, Some(usd(4000))));
            assert_eq!(refund.purchase_id, Uuid::from_u128(1));
            assert_eq!(refund.amount.to_string(), "40");
            assert_eq!(refund.reason.as_str(), reason);
        }
        assert!(
            link_to_order(&failed("card_declined", None)).is_none(),
            "a declined payment took no money"
        );
    }
}
