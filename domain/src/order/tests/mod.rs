//! Order scenarios, `given(events).when(command).then(events | rejection)`, grouped by what they
//! exercise; this module holds the shared fixtures: one order `ID`, its commands and its events.

mod lifecycle;
mod ownership;
mod payment;
mod properties;
mod wire;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;
use crate::message::{DecodeError, Message};
use crate::money::{Currency, Money};
use crate::pricing::{ItemName, LineItem, Quantity, Sku, Totals};
use crate::testing::{OrderEvents, EXAMPLE_ORDER_TOTAL_MINOR};
use crate::Decider;
use OrderStatus::{Cancelled, Confirmed, Delivered, Pending, Processing, Shipped};
use PaymentStatus::{Failed, Paid, Refunded};

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
        catalog_items: None,
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
        catalog_items: None,
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

const TOTAL: i64 = EXAMPLE_ORDER_TOTAL_MINOR;

/// The example events of `ID`, whose payments come from `purchase_id`.
fn events(purchase_id: Uuid) -> OrderEvents {
    OrderEvents {
        order_id: ID,
        purchase_id,
    }
}

/// Every status a command moves an order to.
const MOVES: [OrderStatus; 5] = [Confirmed, Processing, Shipped, Delivered, Cancelled];

/// When the order moves to `status`: each status its own minute after placing.
fn moved_at(status: OrderStatus) -> DateTime<Utc> {
    t(OrderStatus::ALL.iter().position(|s| *s == status).unwrap() as i64)
}

/// When the payment reaches `status`: each its own minute after the last move.
fn settled_at(status: PaymentStatus) -> DateTime<Utc> {
    let last_move = OrderStatus::ALL.len() - 1;
    let step = PaymentStatus::ALL.iter().position(|s| *s == status).unwrap();
    t((last_move + step) as i64)
}

/// The event moving `ID` to `status`, at its own time; a cancellation asks for no refund.
fn moved(status: OrderStatus) -> Event {
    events(PURCHASE).moved(status, moved_at(status))
}

/// The cancellation asking to refund `PURCHASE`, which paid the total.
fn cancelled_refunding() -> Event {
    events(PURCHASE).cancelled_refunding(moved_at(Cancelled))
}

/// Purchase `purchase_id`'s payment of `ID` reaching `status`, at its own time.
fn settled(status: PaymentStatus, purchase_id: Uuid) -> Event {
    events(purchase_id).settled(status, settled_at(status))
}

/// The command moving `ID` to `status` at the time of [`moved`], with the example values of
/// [`OrderEvents`] (the carrier padded, as a client may send it).
fn move_to(status: OrderStatus, expected_version: Option<u64>) -> Command {
    let (message_type, mut fields) = match status {
        Pending => panic!("an order is pending once placed: no command moves it there"),
        Confirmed => (CONFIRM_ORDER_V1, json!({})),
        Processing => (START_PROCESSING_V1, json!({})),
        Shipped => (
            SHIP_ORDER_V1,
            json!({"carrier": " UPS ", "tracking_number": "1Z999AA10123456784"}),
        ),
        Delivered => (DELIVER_ORDER_V1, json!({})),
        Cancelled => (CANCEL_ORDER_V1, json!({"reason": "changed my mind"})),
    };
    fields["expected_version"] = json!(expected_version);
    fields["at"] = json!(moved_at(status));
    decoded(message_type, fields)
}

/// The command recording purchase `purchase_id`'s payment of `ID` reaching `status`, at the time of
/// [`settled`]; a payment pays the total.
fn settle(status: PaymentStatus, purchase_id: Uuid) -> Command {
    let at = settled_at(status);
    let (message_type, fields) = match status {
        PaymentStatus::Pending => panic!("a payment is pending until it is settled: no command makes it so"),
        Paid => return pay(purchase_id, usd(TOTAL)),
        Failed => (
            RECORD_PAYMENT_FAILURE_V1,
            json!({"purchase_id": purchase_id, "failed_at": at, "reason": "card_declined"}),
        ),
        Refunded => (RECORD_REFUND_V1, json!({"purchase_id": purchase_id, "refunded_at": at})),
    };
    decoded(message_type, fields)
}

fn pay(purchase_id: Uuid, amount: Money) -> Command {
    let paid_at = settled_at(Paid);
    decoded(
        RECORD_PAYMENT_V1,
        json!({"purchase_id": purchase_id, "amount": amount, "paid_at": paid_at}),
    )
}

/// The command of `message_type` on `ID` with `fields`, read from its wire form.
fn decoded(message_type: &str, mut fields: Value) -> Command {
    fields["order_id"] = json!(ID);
    Command::decode(message_type, fields.to_string().as_bytes()).unwrap()
}

/// A priced order's history up to `status`.
fn history(status: OrderStatus) -> Vec<Event> {
    let path: &[OrderStatus] = match status {
        Pending => &[],
        Confirmed => &[Confirmed],
        Processing => &[Confirmed, Processing],
        Shipped => &[Confirmed, Processing, Shipped],
        Delivered => &[Confirmed, Processing, Shipped, Delivered],
        Cancelled => &[Confirmed, Cancelled],
    };
    [placed_priced()]
        .into_iter()
        .chain(path.iter().copied().map(moved))
        .collect()
}

fn every_command() -> Vec<Command> {
    vec![
        Command::PlaceOrder(place(ID, "Zoë")),
        Command::PlaceOrder(place_priced(example_items())),
        move_to(Confirmed, Some(1)),
        move_to(Processing, None),
        move_to(Shipped, Some(3)),
        move_to(Delivered, None),
        move_to(Cancelled, Some(2)),
        pay(PURCHASE, usd(TOTAL)),
        settle(Failed, PURCHASE),
        settle(Refunded, PURCHASE),
    ]
}

fn every_event() -> Vec<Event> {
    vec![
        placed(&place(ID, "Zoë")),
        placed_priced(),
        moved(Confirmed),
        moved(Processing),
        moved(Shipped),
        moved(Delivered),
        cancelled_refunding(),
        moved(Cancelled),
        settled(Paid, PURCHASE),
        settled(Failed, PURCHASE),
        settled(Refunded, PURCHASE),
    ]
}
