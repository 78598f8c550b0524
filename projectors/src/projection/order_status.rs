//! `order_status`: one row per order as of its latest event: where it stands in its lifecycle
//! and its payment, what it was priced at, and when each transition happened.
//!
//! A batch is folded like `purchases`: [`to_load`] names the orders the batch changes but did not
//! place (their rows are read with one query), [`fold`] applies the batch's events in log order to
//! those rows in memory, and [`apply`] writes every touched row with one upsert.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::order::{self, Channel, OrderStatus, PaymentStatus};
use domain::Event;
use sqlx::PgConnection;
use thiserror::Error;
use tracing::warn;
use uuid::Uuid;

use super::{rows_to_load, LoggedEvent};

/// A stored status this code did not write: the table and the code disagree.
#[derive(Debug, Error)]
#[error("order {order_id} has {column} `{value}`, which this version does not know")]
struct UnknownStatus {
    order_id: Uuid,
    column: &'static str,
    value: String,
}

/// When each transition happened, by the event's time; `None` until it has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Transitions {
    confirmed_at: Option<DateTime<Utc>>,
    processing_started_at: Option<DateTime<Utc>>,
    shipped_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    paid_at: Option<DateTime<Utc>>,
    /// The latest failure: a payment may fail more than once before one succeeds.
    payment_failed_at: Option<DateTime<Utc>>,
    refunded_at: Option<DateTime<Utc>>,
}

/// The totals priced when the order was placed, in minor units of the row's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TotalsMinor {
    subtotal: i64,
    tax: i64,
    shipping: i64,
    total: i64,
}

/// An order's row as the batch leaves it; the columns of `order_status`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OrderRow {
    name: String,
    note: Option<String>,
    status: OrderStatus,
    payment_status: PaymentStatus,
    /// Where the order was placed; `api` for one placed before orders had a channel.
    channel: Channel,
    user_id: Option<Uuid>,
    currency: Option<String>,
    /// The sum of the line items' quantities; 0 for an order placed without items.
    item_count: i32,
    totals: Option<TotalsMinor>,
    carrier: Option<String>,
    tracking_number: Option<String>,
    cancel_reason: Option<String>,
    /// Why the latest payment failed; kept when a retry pays, like `payment_failed_at`.
    payment_failure_reason: Option<String>,
    /// The purchase that paid; kept after a refund, as the aggregate keeps it.
    paid_with: Option<Uuid>,
    placed_at: DateTime<Utc>,
    transitions: Transitions,
    updated_at: DateTime<Utc>,
    version: i64,
}

/// `order_status` as stored, before its statuses are read back.
#[derive(Debug, sqlx::FromRow)]
struct StoredRow {
    order_id: Uuid,
    name: String,
    note: Option<String>,
    status: String,
    payment_status: String,
    channel: String,
    user_id: Option<Uuid>,
    currency: Option<String>,
    item_count: i32,
    subtotal_minor: Option<i64>,
    tax_minor: Option<i64>,
    shipping_minor: Option<i64>,
    total_minor: Option<i64>,
    carrier: Option<String>,
    tracking_number: Option<String>,
    cancel_reason: Option<String>,
    payment_failure_reason: Option<String>,
    paid_with: Option<Uuid>,
    placed_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    processing_started_at: Option<DateTime<Utc>>,
    shipped_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    paid_at: Option<DateTime<Utc>>,
    payment_failed_at: Option<DateTime<Utc>>,
    refunded_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl StoredRow {
    /// The row keyed by its order, with its statuses read back.
    fn into_row(self) -> Result<(Uuid, OrderRow), UnknownStatus> {
        let unknown = |column, value: &str| UnknownStatus {
            order_id: self.order_id,
            column,
            value: value.to_owned(),
        };
        let status = OrderStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == self.status)
            .ok_or_else(|| unknown("status", &self.status))?;
        let payment_status = PaymentStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == self.payment_status)
            .ok_or_else(|| unknown("payment_status", &self.payment_status))?;
        let channel = Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == self.channel)
            .ok_or_else(|| unknown("channel", &self.channel))?;
        // All four are written together from one `Totals`, or none is.
        let totals = match (
            self.subtotal_minor,
            self.tax_minor,
            self.shipping_minor,
            self.total_minor,
        ) {
            (Some(subtotal), Some(tax), Some(shipping), Some(total)) => Some(TotalsMinor {
                subtotal,
                tax,
                shipping,
                total,
            }),
            _ => None,
        };
        let row = OrderRow {
            name: self.name,
            note: self.note,
            status,
            payment_status,
            channel,
            user_id: self.user_id,
            currency: self.currency,
            item_count: self.item_count,
            totals,
            carrier: self.carrier,
            tracking_number: self.tracking_number,
            cancel_reason: self.cancel_reason,
            payment_failure_reason: self.payment_failure_reason,
            paid_with: self.paid_with,
            placed_at: self.placed_at,
            transitions: Transitions {
                confirmed_at: self.confirmed_at,
                processing_started_at: self.processing_started_at,
                shipped_at: self.shipped_at,
                delivered_at: self.delivered_at,
                cancelled_at: self.cancelled_at,
                paid_at: self.paid_at,
                payment_failed_at: self.payment_failed_at,
                refunded_at: self.refunded_at,
            },
            updated_at: self.updated_at,
            version: self.version,
        };
        Ok((self.order_id, row))
    }
}

fn order_event(event: &LoggedEvent) -> Option<&order::Event> {
    match &event.envelope.message {
        Event::Order(order) => Some(order),
        // Other aggregates share the log; they are not orders.
        Event::Purchase(_) => None,
    }
}

/// The orders the batch changes without having placed them: their rows come from the table.
/// Those placed in the batch start from their `OrderPlaced` and need no read: placing is an
/// order's first event, and rows commit with the checkpoint, so no placing is applied twice.
fn to_load(events: &[LoggedEvent]) -> Vec<Uuid> {
    rows_to_load(events.iter().filter_map(order_event), |e| {
        matches!(e, order::Event::OrderPlaced(_))
    })
}

/// Applies the batch's order events in log order to `loaded` (the stored rows [`to_load`] named)
/// and returns every row the batch touched.
///
/// An event at or below a row's `version` has been applied already and is passed over. An
/// order's events share a partition, so they arrive here in their own order.
fn fold(mut loaded: HashMap<Uuid, OrderRow>, events: &[LoggedEvent]) -> HashMap<Uuid, OrderRow> {
    let mut rows = HashMap::new();
    for logged in events {
        let Some(event) = order_event(logged) else {
            continue;
        };
        let version = logged.envelope.sequence.unwrap_or(1) as i64;
        let order_id = event.order_id();
        if let order::Event::OrderPlaced(placed) = event {
            rows.insert(order_id, placed_row(placed, version));
            continue;
        }
        let Some(mut row) = rows.remove(&order_id).or_else(|| loaded.remove(&order_id)) else {
            // The decider accepts nothing for an order before it is placed: a missing row is a
            // fact that cannot have been decided. Like `evolve`, keep going rather than stall
            // every order behind it.
            warn!(%order_id, version, "order event without a placed order; skipped");
            continue;
        };
        if version > row.version {
            evolve(&mut row, event, version);
        }
        rows.insert(order_id, row);
    }
    rows
}

fn placed_row(placed: &order::OrderPlaced, version: i64) -> OrderRow {
    let details = placed.details.as_ref();
    let quantities: i64 = details
        .map(|d| d.items.iter().map(|item| i64::from(item.quantity.get())).sum())
        .unwrap_or(0);
    OrderRow {
        name: placed.name.as_str().to_owned(),
        note: placed.note.as_ref().map(|n| n.as_str().to_owned()),
        status: OrderStatus::Pending,
        payment_status: PaymentStatus::Pending,
        // Set on every `OrderPlaced`: a v1 event was upcast to `api` when it was decoded.
        channel: placed.channel,
        // The owner, with or without items; an upcast v1 or v2 event took it from its details.
        user_id: placed.user_id,
        currency: details.map(|d| d.currency.code().to_owned()),
        // Quantities are at most 1,000 per line; saturate rather than wrap on absurd orders.
        item_count: i32::try_from(quantities).unwrap_or(i32::MAX),
        // Taken from the event, not priced again: a later pricing policy must not rewrite the past.
        totals: details.map(|d| TotalsMinor {
            subtotal: d.totals.subtotal.minor(),
            tax: d.totals.tax.minor(),
            shipping: d.totals.shipping.minor(),
            total: d.totals.total.minor(),
        }),
        carrier: None,
        tracking_number: None,
        cancel_reason: None,
        payment_failure_reason: None,
        paid_with: None,
        placed_at: placed.placed_at,
        transitions: Transitions::default(),
        updated_at: placed.placed_at,
        version,
    }
}

/// Applies one event after the placing to `row`.
///
/// Mirrors `domain::order::Order::evolve`: a status change the current status does not allow
/// cannot have been decided and leaves the row's status and that transition's fields as they
/// are, so this row always agrees with the state commands are decided on. The event still counts
/// towards `version` and `updated_at`, which follow the log.
fn evolve(row: &mut OrderRow, event: &order::Event, version: i64) {
    use order::Event as E;
    let at = &mut row.transitions;
    match event {
        E::OrderPlaced(_) => {}
        E::OrderConfirmed(e) => {
            if advance(&mut row.status, OrderStatus::Confirmed) {
                at.confirmed_at = Some(e.confirmed_at);
            }
        }
        E::OrderProcessingStarted(e) => {
            if advance(&mut row.status, OrderStatus::Processing) {
                at.processing_started_at = Some(e.started_at);
            }
        }
        E::OrderShipped(e) => {
            if advance(&mut row.status, OrderStatus::Shipped) {
                at.shipped_at = Some(e.shipped_at);
                row.carrier = Some(e.carrier.as_str().to_owned());
                row.tracking_number = Some(e.tracking_number.as_str().to_owned());
            }
        }
        E::OrderDelivered(e) => {
            if advance(&mut row.status, OrderStatus::Delivered) {
                at.delivered_at = Some(e.delivered_at);
            }
        }
        E::OrderCancelled(e) => {
            if advance(&mut row.status, OrderStatus::Cancelled) {
                at.cancelled_at = Some(e.cancelled_at);
                row.cancel_reason = Some(e.reason.as_str().to_owned());
            }
        }
        E::OrderPaid(e) => {
            if settle(&mut row.payment_status, PaymentStatus::Paid) {
                at.paid_at = Some(e.paid_at);
                row.paid_with = Some(e.purchase_id);
            }
        }
        E::OrderPaymentFailed(e) => {
            if settle(&mut row.payment_status, PaymentStatus::Failed) {
                at.payment_failed_at = Some(e.failed_at);
                row.payment_failure_reason = Some(e.reason.as_str().to_owned());
            }
        }
        E::OrderRefunded(e) => {
            if settle(&mut row.payment_status, PaymentStatus::Refunded) {
                at.refunded_at = Some(e.refunded_at);
            }
        }
    }
    row.updated_at = event.occurred_at();
    row.version = version;
}

/// Moves `status` to `next` if the lifecycle allows it; says whether it did.
fn advance(status: &mut OrderStatus, next: OrderStatus) -> bool {
    let allowed = status.can_become(next);
    if allowed {
        *status = next;
    }
    allowed
}

/// Moves `payment` to `next` if the payment rules allow it (`failed` may fail again); says
/// whether it did.
fn settle(payment: &mut PaymentStatus, next: PaymentStatus) -> bool {
    let allowed = payment.can_become(next);
    if allowed {
        *payment = next;
    }
    allowed
}

#[tracing::instrument(skip_all, fields(events = events.len()))]
pub(super) async fn apply(tx: &mut PgConnection, events: &[LoggedEvent]) -> Result<(), sqlx::Error> {
    let ids = to_load(events);
    let loaded = if ids.is_empty() {
        HashMap::new()
    } else {
        load(tx, &ids).await?
    };
    let rows = fold(loaded, events);
    if rows.is_empty() {
        return Ok(());
    }
    upsert(tx, rows).await
}

async fn load(tx: &mut PgConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, OrderRow>, sqlx::Error> {
    let stored: Vec<StoredRow> = sqlx::query_as(
        "SELECT order_id, name, note, status, payment_status, channel, user_id, currency, item_count, subtotal_minor, \
                tax_minor, shipping_minor, total_minor, carrier, tracking_number, cancel_reason, \
                payment_failure_reason, paid_with, placed_at, confirmed_at, processing_started_at, shipped_at, \
                delivered_at, cancelled_at, paid_at, payment_failed_at, refunded_at, updated_at, version \
         FROM order_status WHERE order_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(tx)
    .await?;
    stored
        .into_iter()
        .map(|row| {
            row.into_row().map_err(|unknown| sqlx::Error::ColumnDecode {
                index: unknown.column.to_owned(),
                source: Box::new(unknown),
            })
        })
        .collect()
}

async fn upsert(tx: &mut PgConnection, rows: HashMap<Uuid, OrderRow>) -> Result<(), sqlx::Error> {
    let n = rows.len();
    let mut ids = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut notes = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut payment_statuses = Vec::with_capacity(n);
    let mut channels = Vec::with_capacity(n);
    let mut users = Vec::with_capacity(n);
    let mut currencies = Vec::with_capacity(n);
    let mut item_counts = Vec::with_capacity(n);
    let mut subtotals = Vec::with_capacity(n);
    let mut taxes = Vec::with_capacity(n);
    let mut shippings = Vec::with_capacity(n);
    let mut totals = Vec::with_capacity(n);
    let mut carriers = Vec::with_capacity(n);
    let mut tracking_numbers = Vec::with_capacity(n);
    let mut cancel_reasons = Vec::with_capacity(n);
    let mut failure_reasons = Vec::with_capacity(n);
    let mut paid_with = Vec::with_capacity(n);
    let mut placed = Vec::with_capacity(n);
    let mut confirmed = Vec::with_capacity(n);
    let mut processing = Vec::with_capacity(n);
    let mut shipped = Vec::with_capacity(n);
    let mut delivered = Vec::with_capacity(n);
    let mut cancelled = Vec::with_capacity(n);
    let mut paid = Vec::with_capacity(n);
    let mut failed = Vec::with_capacity(n);
    let mut refunded = Vec::with_capacity(n);
    let mut updated = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    for (order_id, row) in rows {
        ids.push(order_id);
        names.push(row.name);
        notes.push(row.note);
        statuses.push(row.status.as_str());
        payment_statuses.push(row.payment_status.as_str());
        channels.push(row.channel.as_str());
        users.push(row.user_id);
        currencies.push(row.currency);
        item_counts.push(row.item_count);
        subtotals.push(row.totals.map(|t| t.subtotal));
        taxes.push(row.totals.map(|t| t.tax));
        shippings.push(row.totals.map(|t| t.shipping));
        totals.push(row.totals.map(|t| t.total));
        carriers.push(row.carrier);
        tracking_numbers.push(row.tracking_number);
        cancel_reasons.push(row.cancel_reason);
        failure_reasons.push(row.payment_failure_reason);
        paid_with.push(row.paid_with);
        placed.push(row.placed_at);
        confirmed.push(row.transitions.confirmed_at);
        processing.push(row.transitions.processing_started_at);
        shipped.push(row.transitions.shipped_at);
        delivered.push(row.transitions.delivered_at);
        cancelled.push(row.transitions.cancelled_at);
        paid.push(row.transitions.paid_at);
        failed.push(row.transitions.payment_failed_at);
        refunded.push(row.transitions.refunded_at);
        updated.push(row.updated_at);
        versions.push(row.version);
    }
    // Each row is the order's whole state, so a conflict replaces every column; the version guard
    // keeps an older event from overwriting a newer row.
    sqlx::query(
        "INSERT INTO order_status (order_id, name, note, status, payment_status, user_id, currency, item_count, \
                                   subtotal_minor, tax_minor, shipping_minor, total_minor, carrier, \
                                   tracking_number, cancel_reason, payment_failure_reason, paid_with, placed_at, \
                                   confirmed_at, processing_started_at, shipped_at, delivered_at, cancelled_at, \
                                   paid_at, payment_failed_at, refunded_at, updated_at, version, channel) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::text[], \
                              $8::int[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::text[], \
                              $14::text[], $15::text[], $16::text[], $17::uuid[], $18::timestamptz[], \
                              $19::timestamptz[], $20::timestamptz[], $21::timestamptz[], $22::timestamptz[], \
                              $23::timestamptz[], $24::timestamptz[], $25::timestamptz[], $26::timestamptz[], \
                              $27::timestamptz[], $28::bigint[], $29::text[]) \
         ON CONFLICT (order_id) DO UPDATE SET \
           name = EXCLUDED.name, note = EXCLUDED.note, status = EXCLUDED.status, \
           payment_status = EXCLUDED.payment_status, user_id = EXCLUDED.user_id, currency = EXCLUDED.currency, \
           item_count = EXCLUDED.item_count, subtotal_minor = EXCLUDED.subtotal_minor, \
           tax_minor = EXCLUDED.tax_minor, shipping_minor = EXCLUDED.shipping_minor, \
           total_minor = EXCLUDED.total_minor, carrier = EXCLUDED.carrier, \
           tracking_number = EXCLUDED.tracking_number, cancel_reason = EXCLUDED.cancel_reason, \
           payment_failure_reason = EXCLUDED.payment_failure_reason, paid_with = EXCLUDED.paid_with, \
           placed_at = EXCLUDED.placed_at, confirmed_at = EXCLUDED.confirmed_at, \
           processing_started_at = EXCLUDED.processing_started_at, shipped_at = EXCLUDED.shipped_at, \
           delivered_at = EXCLUDED.delivered_at, cancelled_at = EXCLUDED.cancelled_at, \
           paid_at = EXCLUDED.paid_at, payment_failed_at = EXCLUDED.payment_failed_at, \
           refunded_at = EXCLUDED.refunded_at, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version, \
           channel = EXCLUDED.channel \
         WHERE order_status.version < EXCLUDED.version",
    )
    .bind(ids)
    .bind(names)
    .bind(notes)
    .bind(statuses)
    .bind(payment_statuses)
    .bind(users)
    .bind(currencies)
    .bind(item_counts)
    .bind(subtotals)
    .bind(taxes)
    .bind(shippings)
    .bind(totals)
    .bind(carriers)
    .bind(tracking_numbers)
    .bind(cancel_reasons)
    .bind(failure_reasons)
    .bind(paid_with)
    .bind(placed)
    .bind(confirmed)
    .bind(processing)
    .bind(shipped)
    .bind(delivered)
    .bind(cancelled)
    .bind(paid)
    .bind(failed)
    .bind(refunded)
    .bind(updated)
    .bind(versions)
    .bind(channels)
    .execute(tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::money::{Currency, Money};
    use domain::order::{
        CancelReason, Carrier, OrderCancelled, OrderConfirmed, OrderDelivered, OrderName, OrderNote, OrderPaid,
        OrderPaymentFailed, OrderPlaced, OrderProcessingStarted, OrderRefunded, OrderShipped, PaymentFailureReason,
        PricedOrderDetails, TrackingNumber,
    };
    use domain::pricing::{self, ItemName, LineItem, Quantity, Sku};
    use domain::purchase;
    use service_kit::kafka::Envelope;

    const ORDER: Uuid = Uuid::from_u128(0x0001);
    const USER: Uuid = Uuid::from_u128(0x1111);
    const PURCHASE: Uuid = Uuid::from_u128(0x2222);

    /// The time of the `n`th step after placing.
    fn t(n: i64) -> DateTime<Utc> {
        "2025-01-19T15:04:05Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(n)
    }

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::parse("currency", "USD").unwrap()).unwrap()
    }

    fn logged(sequence: u64, message: Event) -> LoggedEvent {
        LoggedEvent {
            partition: 0,
            offset: 0,
            envelope: Envelope {
                id: Uuid::new_v4(),
                // Deliberately not the event's time: rows take theirs from the event.
                time: t(1_000),
                sequence: Some(sequence),
                causation_id: None,
                correlation_id: Uuid::new_v4(),
                traceparent: None,
                message,
            },
        }
    }

    fn of_order(sequence: u64, event: order::Event) -> LoggedEvent {
        logged(sequence, Event::Order(event))
    }

    fn item(sku: &str, quantity: i64, unit_minor: i64) -> LineItem {
        LineItem {
            sku: Sku::parse(sku).unwrap(),
            name: ItemName::parse(&format!("Item {sku}")).unwrap(),
            quantity: Quantity::new(quantity).unwrap(),
            unit_price: usd(unit_minor),
        }
    }

    /// Two of SKU-1 at 12.34 and one of SKU-2 at 5.00: 29.68 + 2.37 tax + 9.99 shipping = 42.04.
    fn placed_priced(order_id: Uuid) -> LoggedEvent {
        let items = vec![item("SKU-1", 2, 1_234), item("SKU-2", 1, 500)];
        let currency = Currency::parse("currency", "USD").unwrap();
        let totals = pricing::price(&items, currency).unwrap();
        of_order(
            1,
            order::Event::OrderPlaced(OrderPlaced {
                order_id,
                name: OrderName::parse("Jane Doe").unwrap(),
                note: Some(OrderNote::parse("Leave at the door").unwrap()),
                placed_at: t(0),
                details: Some(PricedOrderDetails {
                    user_id: Some(USER),
                    currency,
                    items,
                    totals,
                }),
                channel: Channel::Web,
                user_id: Some(USER),
            }),
        )
    }

    fn placed_unpriced(order_id: Uuid) -> LoggedEvent {
        of_order(
            1,
            order::Event::OrderPlaced(OrderPlaced {
                order_id,
                name: OrderName::parse("John Doe").unwrap(),
                note: None,
                placed_at: t(0),
                details: None,
                channel: Channel::Api,
                user_id: None,
            }),
        )
    }

    fn confirmed(seq: u64, n: i64) -> LoggedEvent {
        of_order(
            seq,
            order::Event::OrderConfirmed(OrderConfirmed {
                order_id: ORDER,
                confirmed_at: t(n),
            }),
        )
    }

    fn started(seq: u64, n: i64) -> LoggedEvent {
        of_order(
            seq,
            order::Event::OrderProcessingStarted(OrderProcessingStarted {
                order_id: ORDER,
                started_at: t(n),
            }),
        )
    }

    fn shipped(seq: u64, n: i64) -> LoggedEvent {
        of_order(
            seq,
            order::Event::OrderShipped(OrderShipped {
                order_id: ORDER,
                carrier: Carrier::parse("UPS").unwrap(),
                tracking_number: TrackingNumber::parse("1Z999AA10123456784").unwrap(),
                shipped_at: t(n),
            }),
        )
    }

    fn delivered(seq: u64, n: i64) -> LoggedEvent {
        of_order(
            seq,
            order::Event::OrderDelivered(OrderDelivered {
                order_id: ORDER,
                delivered_at: t(n),
            }),
        )
    }

    fn cancelled(seq: u64, n: i64, refund_requested_for: Option<Uuid>) -> LoggedEvent {
        of_order(
            seq,
            order::Event::OrderCancelled(OrderCancelled {
                order_id: ORDER,
                reason: CancelReason::parse("changed my mind").unwrap(),
                refund_requested_for,
                refund_amount: refund_requested_for.map(|_| usd(4_204)),
                cancelled_at: t(n),
            }),
        )
    }

    fn paid(seq: u64, n: i64) -> LoggedEvent {
        of_order(
            seq,
            order::Event::OrderPaid(OrderPaid {
                order_id: ORDER,
                purchase_id: PURCHASE,
                amount: usd(4_204),
                paid_at: t(n),
            }),
        )
    }

    fn payment_failed(seq: u64, n: i64, reason: &str) -> LoggedEvent {
        of_order(
            seq,
            order::Event::OrderPaymentFailed(OrderPaymentFailed {
                order_id: ORDER,
                purchase_id: Uuid::from_u128(0x3333),
                reason: PaymentFailureReason::parse(reason).unwrap(),
                amount: None,
                failed_at: t(n),
            }),
        )
    }

    fn refunded(seq: u64, n: i64) -> LoggedEvent {
        of_order(
            seq,
            order::Event::OrderRefunded(OrderRefunded {
                order_id: ORDER,
                purchase_id: PURCHASE,
                refunded_at: t(n),
            }),
        )
    }

    fn purchase_declined() -> LoggedEvent {
        logged(
            2,
            Event::Purchase(purchase::Event::PurchaseDeclined(purchase::PurchaseDeclined {
                purchase_id: PURCHASE,
                reason: "card_declined".to_owned(),
                declined_at: t(2),
                order_id: None,
                user_id: None,
            })),
        )
    }

    /// The stored row of `ORDER` after `events`, as a later batch would load it.
    fn stored_after(events: &[LoggedEvent]) -> HashMap<Uuid, OrderRow> {
        fold(HashMap::new(), events)
    }

    #[test]
    fn a_whole_lifecycle_in_one_batch_is_one_row_with_every_timestamp() {
        let other = Uuid::from_u128(0x0002);
        let events = [
            placed_priced(ORDER),
            placed_unpriced(other),
            confirmed(2, 1),
            purchase_declined(),
            payment_failed(3, 2, "card_declined"),
            paid(4, 3),
            started(5, 4),
            shipped(6, 5),
            delivered(7, 6),
            refunded(8, 7),
        ];
        assert!(to_load(&events).is_empty());
        let rows = fold(HashMap::new(), &events);
        assert_eq!(rows.len(), 2);
        let row = &rows[&ORDER];
        assert_eq!(
            *row,
            OrderRow {
                name: "Jane Doe".to_owned(),
                note: Some("Leave at the door".to_owned()),
                status: OrderStatus::Delivered,
                payment_status: PaymentStatus::Refunded,
                channel: Channel::Web,
                user_id: Some(USER),
                currency: Some("USD".to_owned()),
                item_count: 3,
                totals: Some(TotalsMinor {
                    subtotal: 2_968,
                    tax: 237,
                    shipping: 999,
                    total: 4_204,
                }),
                carrier: Some("UPS".to_owned()),
                tracking_number: Some("1Z999AA10123456784".to_owned()),
                cancel_reason: None,
                payment_failure_reason: Some("card_declined".to_owned()),
                paid_with: Some(PURCHASE),
                placed_at: t(0),
                transitions: Transitions {
                    confirmed_at: Some(t(1)),
                    payment_failed_at: Some(t(2)),
                    paid_at: Some(t(3)),
                    processing_started_at: Some(t(4)),
                    shipped_at: Some(t(5)),
                    delivered_at: Some(t(6)),
                    refunded_at: Some(t(7)),
                    cancelled_at: None,
                },
                updated_at: t(7),
                version: 8,
            }
        );

        // The order placed without items has no money and nothing to count.
        let plain = &rows[&other];
        assert_eq!(
            (plain.status, plain.payment_status),
            (OrderStatus::Pending, PaymentStatus::Pending)
        );
        assert_eq!(
            (plain.user_id, plain.currency.as_deref(), plain.item_count),
            (None, None, 0)
        );
        assert_eq!(plain.totals, None);
        assert_eq!(plain.channel, Channel::Api);
        assert_eq!((plain.updated_at, plain.version), (t(0), 1));
        assert_eq!(plain.transitions, Transitions::default());
    }

    #[test]
    fn a_batch_continues_the_stored_row_and_passes_over_what_it_already_holds() {
        let stored = stored_after(&[placed_priced(ORDER), confirmed(2, 1)]);
        let events = [confirmed(2, 1), started(3, 4), shipped(4, 5)];
        assert_eq!(to_load(&events), vec![ORDER]);

        let rows = fold(stored.clone(), &events);
        let row = &rows[&ORDER];
        assert_eq!(
            (row.status, row.version, row.updated_at),
            (OrderStatus::Shipped, 4, t(5))
        );
        // What the stored row knew stays; what the batch adds is added.
        assert_eq!(row.transitions.confirmed_at, Some(t(1)));
        assert_eq!(row.transitions.processing_started_at, Some(t(4)));
        assert_eq!(row.transitions.shipped_at, Some(t(5)));
        assert_eq!(row.carrier.as_deref(), Some("UPS"));
        assert_eq!((row.item_count, row.totals.map(|t| t.total)), (3, Some(4_204)));
        assert_eq!(row.placed_at, t(0));

        // Replaying what the stored row already reflects changes nothing.
        let again = fold(rows.clone(), &events);
        assert_eq!(again, rows);
    }

    #[test]
    fn a_paid_then_refunded_order_keeps_the_purchase_that_paid() {
        let stored = stored_after(&[placed_priced(ORDER), payment_failed(2, 1, "insufficient_funds")]);
        let failed = &stored[&ORDER];
        assert_eq!(failed.payment_status, PaymentStatus::Failed);
        assert_eq!(failed.payment_failure_reason.as_deref(), Some("insufficient_funds"));

        let paid_rows = fold(stored, &[paid(3, 2)]);
        let row = &paid_rows[&ORDER];
        assert_eq!(
            (row.payment_status, row.paid_with),
            (PaymentStatus::Paid, Some(PURCHASE))
        );
        assert_eq!(row.transitions.paid_at, Some(t(2)));
        // The failure before it stays on record.
        assert_eq!(row.transitions.payment_failed_at, Some(t(1)));
        assert_eq!(row.status, OrderStatus::Pending);

        let refunded_rows = fold(paid_rows, &[refunded(4, 9)]);
        let row = &refunded_rows[&ORDER];
        assert_eq!(row.payment_status, PaymentStatus::Refunded);
        assert_eq!(row.paid_with, Some(PURCHASE));
        assert_eq!(
            (row.transitions.paid_at, row.transitions.refunded_at),
            (Some(t(2)), Some(t(9)))
        );
        assert_eq!((row.updated_at, row.version), (t(9), 4));

        // A refunded payment is final: a late payment cannot have been decided and changes nothing
        // but the version.
        let late = fold(refunded_rows.clone(), &[paid(5, 10)]);
        assert_eq!(late[&ORDER].payment_status, PaymentStatus::Refunded);
        assert_eq!(late[&ORDER].transitions.paid_at, Some(t(2)));
        assert_eq!(late[&ORDER].version, 5);
    }

    #[test]
    fn a_cancelled_order_records_why_and_when_and_moves_no_further() {
        let events = [
            placed_priced(ORDER),
            confirmed(2, 1),
            paid(3, 2),
            cancelled(4, 3, Some(PURCHASE)),
        ];
        let rows = fold(HashMap::new(), &events);
        let row = &rows[&ORDER];
        assert_eq!(row.status, OrderStatus::Cancelled);
        assert_eq!(row.cancel_reason.as_deref(), Some("changed my mind"));
        assert_eq!(row.transitions.cancelled_at, Some(t(3)));
        // Cancelling asks for a refund; the payment is refunded only when that is recorded.
        assert_eq!(row.payment_status, PaymentStatus::Paid);

        let later = fold(rows, &[shipped(5, 4), refunded(6, 5)]);
        let row = &later[&ORDER];
        assert_eq!(row.status, OrderStatus::Cancelled);
        assert_eq!((row.carrier.as_deref(), row.transitions.shipped_at), (None, None));
        assert_eq!(row.payment_status, PaymentStatus::Refunded);
        assert_eq!((row.updated_at, row.version), (t(5), 6));
    }

    #[test]
    fn purchase_events_and_events_of_unknown_orders_touch_nothing() {
        let events = [purchase_declined(), confirmed(2, 1), delivered(3, 2)];
        assert_eq!(to_load(&events), vec![ORDER]);
        assert!(fold(HashMap::new(), &events).is_empty());
    }

    #[test]
    fn a_stored_row_reads_back_and_an_unknown_status_is_an_error() {
        let row = fold(
            HashMap::new(),
            &[
                placed_priced(ORDER),
                confirmed(2, 1),
                payment_failed(3, 2, "card_declined"),
            ],
        )
        .remove(&ORDER)
        .unwrap();
        let stored = |status: &str, payment_status: &str| {
            let totals = row.totals.unwrap();
            let at = &row.transitions;
            StoredRow {
                order_id: ORDER,
                name: row.name.clone(),
                note: row.note.clone(),
                status: status.to_owned(),
                payment_status: payment_status.to_owned(),
                channel: row.channel.as_str().to_owned(),
                user_id: row.user_id,
                currency: row.currency.clone(),
                item_count: row.item_count,
                subtotal_minor: Some(totals.subtotal),
                tax_minor: Some(totals.tax),
                shipping_minor: Some(totals.shipping),
                total_minor: Some(totals.total),
                carrier: None,
                tracking_number: None,
                cancel_reason: None,
                payment_failure_reason: row.payment_failure_reason.clone(),
                paid_with: None,
                placed_at: row.placed_at,
                confirmed_at: at.confirmed_at,
                processing_started_at: None,
                shipped_at: None,
                delivered_at: None,
                cancelled_at: None,
                paid_at: None,
                payment_failed_at: at.payment_failed_at,
                refunded_at: None,
                updated_at: row.updated_at,
                version: row.version,
            }
        };
        assert_eq!(stored("confirmed", "failed").into_row().unwrap(), (ORDER, row.clone()));
        for status in OrderStatus::ALL {
            for payment in PaymentStatus::ALL {
                let (_, read) = stored(status.as_str(), payment.as_str()).into_row().unwrap();
                assert_eq!((read.status, read.payment_status), (status, payment));
            }
        }
        let err = stored("lost", "pending").into_row().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("order {ORDER} has status `lost`, which this version does not know")
        );
        assert_eq!(
            stored("pending", "authorized").into_row().unwrap_err().column,
            "payment_status"
        );
    }
}
