//! Why an order command is refused.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use super::{OrderStatus, PaymentStatus};
use crate::pricing::PricingError;

/// Why an order command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Rejection {
    #[error("order {order_id} has already been placed")]
    AlreadyPlaced { order_id: Uuid },
    #[error("order {order_id} does not exist")]
    NotFound { order_id: Uuid },
    /// The acting user is not the order's owner. The edge answers it exactly as
    /// [`Rejection::NotFound`], so nobody learns that another user's order exists.
    #[error("order {order_id} belongs to another user")]
    NotOwner { order_id: Uuid },
    /// The client acted on version `expected` (`If-Match`), but the order is at `actual`.
    #[error("order is at version {actual}, not the expected {expected}")]
    StaleVersion { expected: u64, actual: u64 },
    /// The order cannot move from `status` to what the command asks; `allowed` are the statuses
    /// it can move to.
    #[error("order {order_id} is {status}; it can only become {}", listed(.allowed))]
    IllegalTransition {
        order_id: Uuid,
        status: OrderStatus,
        allowed: Vec<OrderStatus>,
    },
    /// The payment cannot move from `payment_status` to what the command records; `allowed` are
    /// the payment statuses it can move to.
    #[error("payment of order {order_id} is {payment_status}; it can only become {}", listed(.allowed))]
    IllegalPaymentTransition {
        order_id: Uuid,
        payment_status: PaymentStatus,
        allowed: Vec<PaymentStatus>,
    },
    /// A cancelled order takes no payment (a refund of an earlier one is still recorded).
    #[error("order {order_id} is cancelled and takes no payment")]
    Cancelled { order_id: Uuid },
    /// The order was placed without items, so there is no total to pay.
    #[error("order {order_id} has no total to pay")]
    NotPriced { order_id: Uuid },
    /// A refund names a purchase other than the one that paid the order.
    #[error("order {order_id} was paid by purchase {paid_with}, not {purchase_id}")]
    WrongPurchase {
        order_id: Uuid,
        purchase_id: Uuid,
        paid_with: Uuid,
    },
    /// The order's catalog items are still being reserved: it cannot start processing yet.
    #[error("order {order_id} is still reserving its stock")]
    StockPending { order_id: Uuid },
    /// The order's items could not be priced.
    #[error("order {order_id} cannot be priced: {problem}")]
    Pricing { order_id: Uuid, problem: PricingError },
}

/// `a, b or c`, or `nothing` for an empty list.
fn listed<T: fmt::Display>(items: &[T]) -> String {
    match items {
        [] => "nothing".to_owned(),
        [one] => one.to_string(),
        [rest @ .., last] => {
            let rest: Vec<String> = rest.iter().map(ToString::to_string).collect();
            format!("{} or {last}", rest.join(", "))
        }
    }
}
