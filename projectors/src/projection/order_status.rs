//! `order_status`: one row per order as of its latest event: where it stands in its lifecycle
//! and its payment, what it was priced at, and when each transition happened.
//!
//! Folded like every [`Latest`] read model: the orders a batch changes but did not place are
//! loaded with one query, the batch's events applied in log order, every touched row written with
//! one upsert ([`read_models::order_status`]).

use chrono::{DateTime, Utc};
use domain::order::{self, Lifecycle, OrderStatus, PaymentStatus, StockStatus};
use read_models::order_status::{self, OrderStatusRow};
use read_models::LatestRow as _;
use sqlx::PgConnection;
use thiserror::Error;
use uuid::Uuid;

use super::{fold_batch, fold_batch_touched, unknown_value, Latest, LoggedEvent};

/// A stored status this code did not write: the table and the code disagree.
#[derive(Debug, Error)]
#[error("order {order_id} has {column} `{value}`, which this version does not know")]
struct UnknownStatus {
    order_id: Uuid,
    column: &'static str,
    value: String,
}

/// The `order_status` read model.
#[derive(Debug)]
struct Orders;

impl Latest for Orders {
    type Event = order::Event;
    type Row = OrderStatusRow;

    fn start(&mut self, placed: &order::OrderPlaced, version: i64) -> OrderStatusRow {
        placed_row(placed, version)
    }

    fn evolve(&mut self, row: &mut OrderStatusRow, event: &order::Event, version: i64) {
        evolve(row, event, version);
    }

    fn check(row: &OrderStatusRow) -> Result<(), sqlx::Error> {
        check(row).map_err(|unknown| unknown_value(unknown.column, unknown))
    }
}

/// Checks that every status of a stored row is one this code knows.
fn check(row: &OrderStatusRow) -> Result<(), UnknownStatus> {
    let unknown = |column, value: &str| UnknownStatus {
        order_id: row.order_id,
        column,
        value: value.to_owned(),
    };
    OrderStatus::from_wire(&row.status).ok_or_else(|| unknown("status", &row.status))?;
    PaymentStatus::from_wire(&row.payment_status).ok_or_else(|| unknown("payment_status", &row.payment_status))?;
    order::Channel::from_wire(&row.channel).ok_or_else(|| unknown("channel", &row.channel))?;
    StockStatus::from_wire(&row.stock_status).ok_or_else(|| unknown("stock_status", &row.stock_status))?;
    Ok(())
}

fn placed_row(placed: &order::OrderPlaced, version: i64) -> OrderStatusRow {
    let details = placed.details.as_ref();
    let quantities: i64 = details
        .map(|d| d.items.iter().map(|item| i64::from(item.quantity.get())).sum())
        .unwrap_or(0);
    // Taken from the event, not priced again: a later pricing policy must not rewrite the past.
    let totals = details.map(|d| &d.totals);
    OrderStatusRow {
        order_id: placed.order_id,
        name: placed.name.as_str().to_owned(),
        note: placed.note.as_ref().map(|n| n.as_str().to_owned()),
        status: OrderStatus::Pending.as_str().to_owned(),
        payment_status: PaymentStatus::Pending.as_str().to_owned(),
        // Set on every `OrderPlaced`: a v1 event was upcast to `api` when it was decoded.
        channel: placed.channel.as_str().to_owned(),
        // The owner, with or without items; an upcast v1 or v2 event took it from its details.
        user_id: placed.user_id,
        currency: details.map(|d| d.currency.code().to_owned()),
        // Quantities are at most 1,000 per line; saturate rather than wrap on absurd orders.
        item_count: i32::try_from(quantities).unwrap_or(i32::MAX),
        subtotal_minor: totals.map(|t| t.subtotal.minor()),
        tax_minor: totals.map(|t| t.tax.minor()),
        shipping_minor: totals.map(|t| t.shipping.minor()),
        total_minor: totals.map(|t| t.total.minor()),
        carrier: None,
        tracking_number: None,
        cancel_reason: None,
        payment_failure_reason: None,
        paid_with: None,
        placed_at: placed.placed_at,
        confirmed_at: None,
        processing_started_at: None,
        shipped_at: None,
        delivered_at: None,
        cancelled_at: None,
        paid_at: None,
        payment_failed_at: None,
        refunded_at: None,
        // As the aggregate's state: tracked when the order has catalog items.
        stock_status: if placed.catalog_items.as_ref().is_some_and(|items| !items.is_empty()) {
            StockStatus::Pending
        } else {
            StockStatus::NotTracked
        }
        .as_str()
        .to_owned(),
        updated_at: placed.placed_at,
        version,
    }
}

/// Applies one event after the placing to `row`.
///
/// Mirrors `domain::order::Order::evolve`: a status change the current status does not allow
/// cannot have been decided and leaves the row's status and that transition's fields as they
/// are, so this row always agrees with the state commands are decided on. The stock moves as the
/// aggregate's does: a cancellation or shipment that names stock releases or ships it, and only
/// pending stock becomes reserved. The event still counts
/// towards `version` and `updated_at`, which follow the log.
fn evolve(row: &mut OrderStatusRow, event: &order::Event, version: i64) {
    use order::Event as E;
    let at = event.occurred_at();
    match event {
        E::OrderPlaced(_) | E::OrderItemReserved(_) => {}
        E::OrderConfirmed(_) => {
            advance(row, OrderStatus::Confirmed, at);
        }
        E::OrderProcessingStarted(_) => {
            advance(row, OrderStatus::Processing, at);
        }
        E::OrderShipped(e) => {
            if advance(row, OrderStatus::Shipped, at) {
                row.carrier = Some(e.carrier.as_str().to_owned());
                row.tracking_number = Some(e.tracking_number.as_str().to_owned());
            }
            if e.stock_shipped.is_some() {
                row.stock_status = StockStatus::Shipped.as_str().to_owned();
            }
        }
        E::OrderDelivered(_) => {
            advance(row, OrderStatus::Delivered, at);
        }
        E::OrderCancelled(e) => {
            if advance(row, OrderStatus::Cancelled, at) {
                row.cancel_reason = Some(e.reason.as_str().to_owned());
            }
            if e.stock_released.is_some() {
                row.stock_status = StockStatus::Released.as_str().to_owned();
            }
        }
        E::OrderPaid(e) => {
            if settle(row, PaymentStatus::Paid, at) {
                row.paid_with = Some(e.purchase_id);
            }
        }
        E::OrderPaymentFailed(e) => {
            if settle(row, PaymentStatus::Failed, at) {
                row.payment_failure_reason = Some(e.reason.as_str().to_owned());
            }
        }
        E::OrderRefunded(_) => {
            settle(row, PaymentStatus::Refunded, at);
        }
        E::OrderStockReserved(_) => {
            if row.stock_status == StockStatus::Pending.as_str() {
                row.stock_status = StockStatus::Reserved.as_str().to_owned();
            }
        }
    }
    row.updated_at = at;
    row.version = version;
}

/// Moves the order's status to `next` if the lifecycle allows it, recording `at` as when it got
/// there; says whether it did.
fn advance(row: &mut OrderStatusRow, next: OrderStatus, at: DateTime<Utc>) -> bool {
    let moved = transition(&mut row.status, next);
    let reached_at = match next {
        // Nothing moves an order back to pending; it got there when it was placed.
        OrderStatus::Pending => None,
        OrderStatus::Confirmed => Some(&mut row.confirmed_at),
        OrderStatus::Processing => Some(&mut row.processing_started_at),
        OrderStatus::Shipped => Some(&mut row.shipped_at),
        OrderStatus::Delivered => Some(&mut row.delivered_at),
        OrderStatus::Cancelled => Some(&mut row.cancelled_at),
    };
    stamp(moved, reached_at, at)
}

/// Moves the order's payment to `next` if the payment rules allow it (`failed` may fail again),
/// recording `at` as when it got there; says whether it did.
fn settle(row: &mut OrderStatusRow, next: PaymentStatus, at: DateTime<Utc>) -> bool {
    let moved = transition(&mut row.payment_status, next);
    let reached_at = match next {
        PaymentStatus::Pending => None,
        PaymentStatus::Paid => Some(&mut row.paid_at),
        PaymentStatus::Failed => Some(&mut row.payment_failed_at),
        PaymentStatus::Refunded => Some(&mut row.refunded_at),
    };
    stamp(moved, reached_at, at)
}

/// Records `at` in the column of the status reached, if the row `moved` there.
fn stamp(moved: bool, reached_at: Option<&mut Option<DateTime<Utc>>>, at: DateTime<Utc>) -> bool {
    if let (true, Some(column)) = (moved, reached_at) {
        *column = Some(at);
    }
    moved
}

/// Moves the stored name of a status to `next` if its lifecycle allows it from the stored one.
/// A stored name was checked when its row was loaded, and the fold writes only known ones.
fn transition<T: Lifecycle>(stored: &mut String, next: T) -> bool {
    let allowed = T::from_wire(stored).is_some_and(|current| current.can_become(next));
    if allowed {
        *stored = next.as_str().to_owned();
    }
    allowed
}

#[tracing::instrument(skip_all, fields(events = events.len()))]
pub(super) async fn apply(tx: &mut PgConnection, events: &[LoggedEvent]) -> Result<(), sqlx::Error> {
    let rows = fold_batch(tx, &mut Orders, events).await?;
    order_status::upsert(tx, rows.into_values().collect()).await
}

#[tracing::instrument(skip_all, fields(events = events.len()))]
pub(super) async fn apply_bulk(tx: &mut PgConnection, events: &[LoggedEvent]) -> Result<(), sqlx::Error> {
    let touched = fold_batch_touched(tx, &mut Orders, events).await?;
    order_status::upsert(tx, touched.stored).await?;
    OrderStatusRow::copy_new(tx, &touched.new).await
}

#[cfg(test)]
mod tests;
