//! Order scenarios, `given(events).when(command).then(events | rejection)`, grouped by what they
//! exercise; this module holds the shared fixtures: one order `ID`, its commands and its events.

mod lifecycle;
mod ownership;
mod payment;
mod properties;
mod wire;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::*;
use crate::message::{DecodeError, Message};
use crate::money::{Currency, Money};
use crate::pricing::{ItemName, LineItem, Quantity, Sku, Totals};
use crate::Decider;
use OrderStatus::{Cancelled, Confirmed, Delivered, Pending, Processing, Shipped};

const ID: Uuid = Uuid::from_u128(1);
const PURCHASE: Uuid = Uuid::from_u128(2);
const OTHER_PURCHASE: Uuid = Uuid::from_u128(3);
const USER: Uuid = Uuid::from_u128(4);
const OTHER_USER: Uuid = Uuid::from_u128(5);

fn at(time: &str) -> DateTime<Utc> {
    time.parse().unwrap()
}

/// The time of the `n`th step after placing.
fn t(n: i64) -> DateTime<Utc> {
    at("2025-01-19T15:04:05Z") + chrono::Duration::minutes(n)
}

fn usd_currency() -> Currency {
    Currency::parse("currency", "USD").unwrap()
}

fn money(minor: i64, code: &str) -> Money {
    Money::from_minor(minor, Currency::parse("currency", code).unwrap()).unwrap()
}

fn usd(minor: i64) -> Money {
    money(minor, "USD")
}

fn item(sku: &str, quantity: i64, unit_minor: i64) -> LineItem {
    LineItem {
        sku: Sku::parse(sku).unwrap(),
        name: ItemName::parse(&format!("Item {sku}")).unwrap(),
        quantity: Quantity::new(quantity).unwrap(),
        unit_price: usd(unit_minor),
    }
}

fn place(order_id: Uuid, name: &str) -> PlaceOrder {
    PlaceOrder {
        order_id,
        name: OrderName::parse(name).unwrap(),
        note: Some(OrderNote::parse("First order").unwrap()),
        placed_at: "2025-01-19T15:04:05Z".parse().unwrap(),
        details: None,
        channel: None,
        user_id: None,
    }
}

fn placed(command: &PlaceOrder) -> Event {
    Event::OrderPlaced(OrderPlaced {
        order_id: command.order_id,
        name: command.name.clone(),
        note: command.note.clone(),
        placed_at: command.placed_at,
        details: None,
        channel: command.channel.unwrap_or_default(),
        user_id: command.user_id,
    })
}

/// 2 × 12.34 + 1 × 5.00 USD.
fn example_items() -> Vec<LineItem> {
    vec![item("SKU-1", 2, 1234), item("SKU-2", 1, 500)]
}

fn place_priced(items: Vec<LineItem>) -> PlaceOrder {
    PlaceOrder {
        details: Some(OrderDetails {
            user_id: Some(USER),
            currency: usd_currency(),
            items,
        }),
        ..place(ID, "John Doe")
    }
}

/// The example order, priced: 29.68 + 2.37 tax + 9.99 shipping = 42.04.
fn placed_priced() -> Event {
    let command = place_priced(example_items());
    Event::OrderPlaced(OrderPlaced {
        details: Some(PricedOrderDetails {
            user_id: Some(USER),
            currency: usd_currency(),
            items: example_items(),
            totals: Totals {
                subtotal: usd(2968),
                tax: usd(237),
                shipping: usd(999),
                total: usd(4204),
            },
        }),
        user_id: Some(USER),
        ..match placed(&command) {
            Event::OrderPlaced(placed) => placed,
            _ => unreachable!(),
        }
    })
}

const TOTAL: i64 = 4204;

fn confirm(expected_version: Option<u64>) -> Command {
    Command::ConfirmOrder(ConfirmOrder {
        order_id: ID,
        expected_version,
        at: t(1),
    })
}

fn confirmed() -> Event {
    Event::OrderConfirmed(OrderConfirmed {
        order_id: ID,
        confirmed_at: t(1),
    })
}

fn start(expected_version: Option<u64>) -> Command {
    Command::StartProcessing(StartProcessing {
        order_id: ID,
        expected_version,
        at: t(2),
    })
}

fn started() -> Event {
    Event::OrderProcessingStarted(OrderProcessingStarted {
        order_id: ID,
        started_at: t(2),
    })
}

fn ship(expected_version: Option<u64>) -> Command {
    Command::ShipOrder(ShipOrder {
        order_id: ID,
        carrier: Carrier::parse(" UPS ").unwrap(),
        tracking_number: TrackingNumber::parse("1Z999AA10123456784").unwrap(),
        expected_version,
        at: t(3),
    })
}

fn shipped() -> Event {
    Event::OrderShipped(OrderShipped {
        order_id: ID,
        carrier: Carrier::parse("UPS").unwrap(),
        tracking_number: TrackingNumber::parse("1Z999AA10123456784").unwrap(),
        shipped_at: t(3),
    })
}

fn deliver(expected_version: Option<u64>) -> Command {
    Command::DeliverOrder(DeliverOrder {
        order_id: ID,
        expected_version,
        at: t(4),
    })
}

fn delivered() -> Event {
    Event::OrderDelivered(OrderDelivered {
        order_id: ID,
        delivered_at: t(4),
    })
}

fn cancel(expected_version: Option<u64>) -> Command {
    Command::CancelOrder(CancelOrder {
        order_id: ID,
        reason: CancelReason::parse("changed my mind").unwrap(),
        expected_version,
        at: t(5),
        acting_user: None,
    })
}

fn cancelled(refund_requested_for: Option<Uuid>) -> Event {
    Event::OrderCancelled(OrderCancelled {
        order_id: ID,
        reason: CancelReason::parse("changed my mind").unwrap(),
        refund_amount: refund_requested_for.map(|_| usd(TOTAL)),
        refund_requested_for,
        cancelled_at: t(5),
    })
}

fn pay(purchase_id: Uuid, amount: Money) -> Command {
    Command::RecordPayment(RecordPayment {
        order_id: ID,
        purchase_id,
        amount,
        expected_version: None,
        paid_at: t(6),
        payer: None,
    })
}

fn paid(purchase_id: Uuid) -> Event {
    Event::OrderPaid(OrderPaid {
        order_id: ID,
        purchase_id,
        amount: usd(TOTAL),
        paid_at: t(6),
    })
}

fn fail(purchase_id: Uuid) -> Command {
    Command::RecordPaymentFailure(RecordPaymentFailure {
        order_id: ID,
        purchase_id,
        reason: PaymentFailureReason::parse("card_declined").unwrap(),
        expected_version: None,
        failed_at: t(7),
        payer: None,
    })
}

fn payment_failed(purchase_id: Uuid) -> Event {
    Event::OrderPaymentFailed(OrderPaymentFailed {
        order_id: ID,
        purchase_id,
        reason: PaymentFailureReason::parse("card_declined").unwrap(),
        amount: None,
        failed_at: t(7),
    })
}

fn refund(purchase_id: Uuid) -> Command {
    Command::RecordRefund(RecordRefund {
        order_id: ID,
        purchase_id,
        expected_version: None,
        refunded_at: t(8),
    })
}

fn refunded(purchase_id: Uuid) -> Event {
    Event::OrderRefunded(OrderRefunded {
        order_id: ID,
        purchase_id,
        refunded_at: t(8),
    })
}

/// A priced order's history up to `status`.
fn history(status: OrderStatus) -> Vec<Event> {
    let mut events = vec![placed_priced()];
    let path: &[fn() -> Event] = match status {
        Pending => &[],
        Confirmed => &[confirmed],
        Processing => &[confirmed, started],
        Shipped => &[confirmed, started, shipped],
        Delivered => &[confirmed, started, shipped, delivered],
        Cancelled => &[confirmed, || cancelled(None)],
    };
    events.extend(path.iter().map(|event| event()));
    events
}

fn every_command() -> Vec<Command> {
    vec![
        Command::PlaceOrder(place(ID, "Zoë")),
        Command::PlaceOrder(place_priced(example_items())),
        confirm(Some(1)),
        start(None),
        ship(Some(3)),
        deliver(None),
        cancel(Some(2)),
        pay(PURCHASE, usd(TOTAL)),
        fail(PURCHASE),
        refund(PURCHASE),
    ]
}

fn every_event() -> Vec<Event> {
    vec![
        placed(&place(ID, "Zoë")),
        placed_priced(),
        confirmed(),
        started(),
        shipped(),
        delivered(),
        cancelled(Some(PURCHASE)),
        cancelled(None),
        paid(PURCHASE),
        payment_failed(PURCHASE),
        refunded(PURCHASE),
    ]
}
