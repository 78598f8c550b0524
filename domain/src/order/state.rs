//! What an order's history adds up to, and how each fact changes it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Event, OrderStatus, PaymentStatus, StockStatus};
use crate::money::Money;
use crate::pricing::Sku;
use crate::product::StockLine;

/// Serialisable so the decider can keep it in its local store and changelog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    #[default]
    NotPlaced,
    Placed(PlacedOrder),
}

/// What a placed order's history adds up to: all that `decide` reads of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedOrder {
    pub order_id: Uuid,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    /// What the order costs, if it was placed with items; an order without one takes no payment.
    pub total: Option<Money>,
    /// The purchase that paid the order, once paid (kept after a refund).
    pub paid_with: Option<Uuid>,
    /// The user the order belongs to, if it has one.
    pub owner: Option<Uuid>,
    /// How many events of this order have been applied: 1 once placed. The same number as
    /// the `ce_sequence` of the order's last event, so an `If-Match` can be checked against it.
    pub version: u64,
    /// The stock fields default when absent: states stored before orders tracked stock decode as
    /// orders without catalog items.
    #[serde(default)]
    pub stock_status: StockStatus,
    /// The catalog items whose stock the order reserves; empty when not tracked.
    #[serde(default)]
    pub catalog_items: Vec<StockLine>,
    /// The catalog items not recorded as held yet, while the stock is `pending`.
    #[serde(default)]
    pub awaiting_stock: BTreeSet<Sku>,
}

impl PlacedOrder {
    /// The SKUs of the order's catalog items, when its stock is held or being reserved: what a
    /// cancellation gives back or a shipment takes.
    pub fn held_stock(&self) -> Option<Vec<Sku>> {
        matches!(self.stock_status, StockStatus::Pending | StockStatus::Reserved)
            .then(|| self.catalog_items.iter().map(|line| line.sku.clone()).collect())
    }
}

impl State {
    /// The order's version: 0 before it is placed.
    pub fn version(&self) -> u64 {
        match self {
            Self::NotPlaced => 0,
            Self::Placed(order) => order.version,
        }
    }

    pub fn status(&self) -> Option<OrderStatus> {
        match self {
            Self::NotPlaced => None,
            Self::Placed(order) => Some(order.status),
        }
    }

    pub fn payment_status(&self) -> Option<PaymentStatus> {
        match self {
            Self::NotPlaced => None,
            Self::Placed(order) => Some(order.payment_status),
        }
    }
}

/// Applies a fact. A fact that does not fit the state (a status change not allowed from the
/// current status) cannot have been decided here and leaves the status as it is, but still
/// counts towards the version, which follows the log.
pub(super) fn evolve(state: State, event: &Event) -> State {
    let State::Placed(mut order) = state else {
        return match event {
            Event::OrderPlaced(placed) => {
                let catalog_items = placed.catalog_items.clone().unwrap_or_default();
                State::Placed(PlacedOrder {
                    order_id: placed.order_id,
                    status: OrderStatus::Pending,
                    payment_status: PaymentStatus::Pending,
                    total: placed.details.as_ref().map(|details| details.totals.total),
                    paid_with: None,
                    owner: placed.user_id,
                    version: 1,
                    stock_status: if catalog_items.is_empty() {
                        StockStatus::NotTracked
                    } else {
                        StockStatus::Pending
                    },
                    awaiting_stock: catalog_items.iter().map(|line| line.sku.clone()).collect(),
                    catalog_items,
                })
            }
            // Nothing can be decided for an order that was never placed.
            _ => State::NotPlaced,
        };
    };
    let mut advance = |next: OrderStatus| {
        if order.status.can_become(next) {
            order.status = next;
        }
    };
    match event {
        Event::OrderPlaced(_) => {}
        Event::OrderConfirmed(_) => advance(OrderStatus::Confirmed),
        Event::OrderProcessingStarted(_) => advance(OrderStatus::Processing),
        Event::OrderShipped(shipped) => {
            advance(OrderStatus::Shipped);
            if shipped.stock_shipped.is_some() {
                order.stock_status = StockStatus::Shipped;
            }
        }
        Event::OrderDelivered(_) => advance(OrderStatus::Delivered),
        Event::OrderCancelled(cancelled) => {
            advance(OrderStatus::Cancelled);
            if cancelled.stock_released.is_some() {
                order.stock_status = StockStatus::Released;
                order.awaiting_stock.clear();
            }
        }
        Event::OrderItemReserved(reserved) => {
            order.awaiting_stock.remove(&reserved.sku);
        }
        Event::OrderStockReserved(_) => {
            if order.stock_status == StockStatus::Pending {
                order.stock_status = StockStatus::Reserved;
            }
        }
        Event::OrderPaid(paid) => {
            if order.payment_status.can_become(PaymentStatus::Paid) {
                order.payment_status = PaymentStatus::Paid;
                order.paid_with = Some(paid.purchase_id);
            }
        }
        Event::OrderPaymentFailed(_) => {
            if order.payment_status.can_become(PaymentStatus::Failed) {
                order.payment_status = PaymentStatus::Failed;
            }
        }
        Event::OrderRefunded(_) => {
            if order.payment_status.can_become(PaymentStatus::Refunded) {
                order.payment_status = PaymentStatus::Refunded;
            }
        }
    }
    order.version = order.version.saturating_add(1);
    State::Placed(order)
}
