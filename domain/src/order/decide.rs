//! Every rule an order command is decided by.

use chrono::{DateTime, Utc};

use super::{
    CancelOrder, CancelReason, Command, Event, OrderCancelled, OrderConfirmed, OrderDelivered, OrderItemReserved,
    OrderPaid, OrderPaymentFailed, OrderPlaced, OrderProcessingStarted, OrderRefunded, OrderShipped, OrderStatus,
    OrderStockReserved, PaymentFailureReason, PaymentStatus, PlaceOrder, PlacedOrder, PricedOrderDetails,
    RecordPayment, RecordPaymentFailure, Rejection, State, StockStatus,
};
use crate::pricing;

impl PlacedOrder {
    /// Checks the order may move to `next`.
    fn advance(&self, next: OrderStatus) -> Result<(), Rejection> {
        self.status
            .check_move(next)
            .map_err(|allowed| Rejection::IllegalTransition {
                order_id: self.order_id,
                status: self.status,
                allowed: allowed.to_vec(),
            })
    }

    /// Checks a payment may be recorded as `next`: payments (`paid`, `failed`) only while the
    /// order is not cancelled, refunds whatever the order's status.
    fn settle(&self, next: PaymentStatus) -> Result<(), Rejection> {
        if next != PaymentStatus::Refunded && self.status == OrderStatus::Cancelled {
            return Err(Rejection::Cancelled {
                order_id: self.order_id,
            });
        }
        self.payment_status
            .check_move(next)
            .map_err(|allowed| Rejection::IllegalPaymentTransition {
                order_id: self.order_id,
                payment_status: self.payment_status,
                allowed: allowed.to_vec(),
            })
    }

    /// The order cancelled for `reason` at `at`: a paid order asks for its payment back, and the
    /// stock it holds or is reserving is given back.
    fn cancelled(&self, reason: CancelReason, at: DateTime<Utc>) -> Event {
        let paid = self.payment_status == PaymentStatus::Paid;
        Event::OrderCancelled(OrderCancelled {
            order_id: self.order_id,
            reason,
            refund_requested_for: self.paid_with.filter(|_| paid),
            refund_amount: self.total.filter(|_| paid),
            cancelled_at: at,
            stock_released: self.held_stock(),
        })
    }
}

fn place_order(place: &PlaceOrder) -> Result<Event, Rejection> {
    let details = place
        .details
        .as_ref()
        .map(|details| {
            pricing::price(&details.items, details.currency)
                .map(|totals| PricedOrderDetails {
                    user_id: details.user_id,
                    currency: details.currency,
                    items: details.items.clone(),
                    totals,
                })
                .map_err(|problem| Rejection::Pricing {
                    order_id: place.order_id,
                    problem,
                })
        })
        .transpose()?;
    let user_id = place.user_id.or(details.as_ref().and_then(|details| details.user_id));
    Ok(Event::OrderPlaced(OrderPlaced {
        order_id: place.order_id,
        name: place.name.clone(),
        note: place.note.clone(),
        placed_at: place.placed_at,
        details,
        channel: place.channel.unwrap_or_default(),
        user_id,
        catalog_items: place.catalog_items.clone().filter(|items| !items.is_empty()),
    }))
}

/// A payment the order does not keep, for `reason`: recorded as failed with the amount it paid, so
/// the payment reactor refunds it.
fn payment_refused(payment: &RecordPayment, reason: PaymentFailureReason) -> Event {
    Event::OrderPaymentFailed(OrderPaymentFailed {
        order_id: payment.order_id,
        purchase_id: payment.purchase_id,
        reason,
        amount: Some(payment.amount),
        failed_at: payment.paid_at,
    })
}

pub(super) fn decide(state: &State, command: &Command) -> Result<Vec<Event>, Rejection> {
    let order_id = command.order_id();
    let order = match (state, command) {
        (State::NotPlaced, Command::PlaceOrder(place)) => return place_order(place).map(|event| vec![event]),
        (State::Placed(_), Command::PlaceOrder(_)) => return Err(Rejection::AlreadyPlaced { order_id }),
        (State::NotPlaced, _) => return Err(Rejection::NotFound { order_id }),
        (State::Placed(order), _) => order,
    };
    // Before the version check, whose answer would tell the order exists.
    if let Command::CancelOrder(CancelOrder {
        acting_user: Some(acting_user),
        ..
    }) = command
    {
        if order.owner != Some(*acting_user) {
            return Err(Rejection::NotOwner { order_id });
        }
    }
    // Another user's purchase naming this order must not settle its payment. An order without an
    // owner, or a purchase whose buyer is unknown, is as before.
    if let Command::RecordPayment(RecordPayment { payer: Some(payer), .. })
    | Command::RecordPaymentFailure(RecordPaymentFailure { payer: Some(payer), .. }) = command
    {
        if order.owner.is_some_and(|owner| owner != *payer) {
            return Err(Rejection::NotOwner { order_id });
        }
    }
    if let Some(expected) = command.expected_version().filter(|expected| *expected != order.version) {
        return Err(Rejection::StaleVersion {
            expected,
            actual: order.version,
        });
    }
    if let Some(next) = command.next_status() {
        order.advance(next)?;
    }
    if matches!(command, Command::StartProcessing(_)) && order.stock_status == StockStatus::Pending {
        return Err(Rejection::StockPending { order_id });
    }
    let event = match command {
        Command::PlaceOrder(_) => return Err(Rejection::AlreadyPlaced { order_id }),
        Command::ConfirmOrder(c) => Event::OrderConfirmed(OrderConfirmed {
            order_id,
            confirmed_at: c.at,
        }),
        Command::StartProcessing(c) => Event::OrderProcessingStarted(OrderProcessingStarted {
            order_id,
            started_at: c.at,
        }),
        Command::ShipOrder(ship) => Event::OrderShipped(OrderShipped {
            order_id,
            carrier: ship.carrier.clone(),
            tracking_number: ship.tracking_number.clone(),
            shipped_at: ship.at,
            stock_shipped: order.held_stock(),
        }),
        Command::DeliverOrder(c) => Event::OrderDelivered(OrderDelivered {
            order_id,
            delivered_at: c.at,
        }),
        Command::CancelOrder(cancel) => order.cancelled(cancel.reason.clone(), cancel.at),
        // A cancelled order keeps no money: the payment is recorded as failed with what it paid,
        // which the payment reactor then refunds, whatever the order's payment status.
        Command::RecordPayment(payment) if order.status == OrderStatus::Cancelled => {
            payment_refused(payment, PaymentFailureReason::order_cancelled())
        }
        Command::RecordPayment(payment) => {
            order.settle(PaymentStatus::Paid)?;
            let total = order.total.ok_or(Rejection::NotPriced { order_id })?;
            if payment.amount == total {
                Event::OrderPaid(OrderPaid {
                    order_id,
                    purchase_id: payment.purchase_id,
                    amount: payment.amount,
                    paid_at: payment.paid_at,
                })
            } else {
                payment_refused(payment, PaymentFailureReason::amount_mismatch())
            }
        }
        Command::RecordPaymentFailure(failure) => {
            order.settle(PaymentStatus::Failed)?;
            Event::OrderPaymentFailed(OrderPaymentFailed {
                order_id,
                purchase_id: failure.purchase_id,
                reason: failure.reason.clone(),
                amount: None,
                failed_at: failure.failed_at,
            })
        }
        Command::RecordRefund(refund) => {
            order.settle(PaymentStatus::Refunded)?;
            match order.paid_with {
                Some(paid_with) if paid_with != refund.purchase_id => {
                    return Err(Rejection::WrongPurchase {
                        order_id,
                        purchase_id: refund.purchase_id,
                        paid_with,
                    })
                }
                _ => {}
            }
            Event::OrderRefunded(OrderRefunded {
                order_id,
                purchase_id: refund.purchase_id,
                refunded_at: refund.refunded_at,
            })
        }
        Command::RecordStockReserved(reserved) => {
            if order.stock_status != StockStatus::Pending || !order.awaiting_stock.contains(&reserved.sku) {
                return Ok(Vec::new());
            }
            let item = Event::OrderItemReserved(OrderItemReserved {
                order_id,
                sku: reserved.sku.clone(),
                reserved_at: reserved.at,
            });
            if order.awaiting_stock.len() > 1 {
                return Ok(vec![item]);
            }
            let all = Event::OrderStockReserved(OrderStockReserved {
                order_id,
                reserved_at: reserved.at,
            });
            return Ok(vec![item, all]);
        }
        // A shortage after the order left `pending` or `confirmed` cannot happen: it does not start
        // processing before its stock is reserved.
        Command::RecordStockShortage(shortage) => {
            if order.stock_status != StockStatus::Pending || !order.status.can_become(OrderStatus::Cancelled) {
                return Ok(Vec::new());
            }
            order.cancelled(CancelReason::out_of_stock(), shortage.at)
        }
    };
    Ok(vec![event])
}
