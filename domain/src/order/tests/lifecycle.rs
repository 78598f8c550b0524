//! Placing an order, moving it through its lifecycle, cancelling it, and `If-Match`.

use super::*;
use std::collections::BTreeSet;

use crate::pricing::PricingError;
use crate::testing::given;

// Placing.

#[test]
fn placing_a_new_order_records_it_with_the_command_time() {
    let command = place(Uuid::from_u128(1), "John Doe");
    given::<Order>([])
        .when(Command::PlaceOrder(command.clone()))
        .then([placed(&command)]);
}

#[test]
fn placing_the_same_order_twice_is_rejected() {
    let command = place(Uuid::from_u128(1), "John Doe");
    given::<Order>([placed(&command)])
        .when(Command::PlaceOrder(command.clone()))
        .then_rejected(Rejection::AlreadyPlaced {
            order_id: command.order_id,
        });
    given::<Order>(history(Delivered))
        .when(Command::PlaceOrder(place_priced(example_items())))
        .then_rejected(Rejection::AlreadyPlaced { order_id: ID });
}

#[test]
fn a_placed_order_is_pending_unpaid_at_version_1() {
    let command = place(Uuid::from_u128(1), "John Doe");
    assert_eq!(
        Order::fold([&placed(&command)]),
        State::Placed(PlacedOrder {
            order_id: command.order_id,
            status: OrderStatus::Pending,
            payment_status: PaymentStatus::Pending,
            total: None,
            paid_with: None,
            owner: None,
            version: 1,
            stock_status: StockStatus::NotTracked,
            catalog_items: Vec::new(),
            awaiting_stock: BTreeSet::new(),
        })
    );
    let state = Order::fold(&history(Pending));
    assert_eq!(state.status(), Some(Pending));
    assert_eq!(state.payment_status(), Some(PaymentStatus::Pending));
    assert_eq!(state.version(), 1);
    assert!(matches!(state, State::Placed(PlacedOrder { total: Some(total), .. }) if total == usd(TOTAL)));
    assert_eq!(State::NotPlaced.version(), 0);
    assert_eq!(State::NotPlaced.status(), None);
}

#[test]
fn placing_with_items_prices_them_into_the_event() {
    given::<Order>([])
        .when(Command::PlaceOrder(place_priced(example_items())))
        .then([placed_priced()]);
}

#[test]
fn an_order_of_100_placed_with_items_ships_free() {
    let Ok(events) = Order::decide(
        &State::NotPlaced,
        &Command::PlaceOrder(place_priced(vec![item("A", 4, 2500)])),
    ) else {
        panic!("rejected");
    };
    let [Event::OrderPlaced(OrderPlaced {
        details: Some(details), ..
    })] = &events[..]
    else {
        panic!("{events:?}");
    };
    assert_eq!(
        details.totals,
        Totals {
            subtotal: usd(10_000),
            tax: usd(800),
            shipping: usd(0),
            total: usd(10_800),
        }
    );
}

#[test]
fn items_that_cannot_be_priced_refuse_the_order() {
    given::<Order>([])
        .when(Command::PlaceOrder(place_priced(vec![])))
        .then_rejected(Rejection::Pricing {
            order_id: ID,
            problem: PricingError::NoItems,
        });
    let mut items = example_items();
    items[1].unit_price = money(500, "EUR");
    given::<Order>([])
        .when(Command::PlaceOrder(place_priced(items)))
        .then_rejected(Rejection::Pricing {
            order_id: ID,
            problem: PricingError::CurrencyMismatch {
                index: 1,
                sku: Sku::parse("SKU-2").unwrap(),
                expected: usd_currency(),
                found: Currency::parse("currency", "EUR").unwrap(),
            },
        });
}

// The lifecycle.

#[test]
fn histories_reach_the_status_they_are_named_after() {
    for status in OrderStatus::ALL {
        let history = history(status);
        let state = Order::fold(&history);
        assert_eq!(state.status(), Some(status));
        assert_eq!(state.version(), history.len() as u64);
    }
}

#[test]
fn each_status_lists_where_it_can_go() {
    for (status, next) in [
        (Pending, &[Confirmed, Cancelled][..]),
        (Confirmed, &[Processing, Cancelled][..]),
        (Processing, &[Shipped][..]),
        (Shipped, &[Delivered][..]),
        (Delivered, &[][..]),
        (Cancelled, &[][..]),
    ] {
        assert_eq!(status.next(), next, "{status}");
        for other in OrderStatus::ALL {
            assert_eq!(status.can_become(other), next.contains(&other));
        }
    }
    assert_eq!(
        OrderStatus::ALL.map(OrderStatus::as_str),
        [
            "pending",
            "confirmed",
            "processing",
            "shipped",
            "delivered",
            "cancelled"
        ]
    );
    assert_eq!(
        PaymentStatus::ALL.map(PaymentStatus::as_str),
        ["pending", "paid", "failed", "refunded"]
    );
    for status in OrderStatus::ALL {
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(json, format!("\"{}\"", status.as_str()));
    }
}

/// Every move of the lifecycle, as the business defines it: from one status to the next.
const ALLOWED: [(OrderStatus, OrderStatus); 6] = [
    (Pending, Confirmed),
    (Pending, Cancelled),
    (Confirmed, Processing),
    (Confirmed, Cancelled),
    (Processing, Shipped),
    (Shipped, Delivered),
];

#[test]
fn every_allowed_transition_is_accepted() {
    for (from, to) in ALLOWED {
        given::<Order>(history(from)).when(move_to(to, None)).then([moved(to)]);
    }
}

#[test]
fn every_status_and_command_pair_is_accepted_or_refused_as_the_table_says() {
    let mut accepted = 0;
    for status in OrderStatus::ALL {
        for next in MOVES {
            let scenario = given::<Order>(history(status)).when(move_to(next, None));
            if ALLOWED.contains(&(status, next)) {
                scenario.then([moved(next)]);
                accepted += 1;
            } else {
                scenario.then_rejected(Rejection::IllegalTransition {
                    order_id: ID,
                    status,
                    allowed: status.next().to_vec(),
                });
            }
        }
    }
    assert_eq!(accepted, ALLOWED.len());
}

#[test]
fn commands_for_an_order_never_placed_are_refused() {
    let moves = MOVES.map(|status| move_to(status, None));
    let payments = [
        pay(PURCHASE, usd(TOTAL)),
        settle(Failed, PURCHASE),
        settle(Refunded, PURCHASE),
    ];
    for command in moves.into_iter().chain(payments) {
        given::<Order>([])
            .when(command)
            .then_rejected(Rejection::NotFound { order_id: ID });
    }
}

#[test]
fn an_illegal_transition_reads_as_what_is_allowed() {
    let rejection = Order::decide(&Order::fold(&history(Pending)), &move_to(Shipped, None)).unwrap_err();
    assert_eq!(
        rejection.to_string(),
        format!("order {ID} is pending; it can only become confirmed or cancelled")
    );
    let rejection = Order::decide(&Order::fold(&history(Delivered)), &move_to(Cancelled, None)).unwrap_err();
    assert_eq!(
        rejection.to_string(),
        format!("order {ID} is delivered; it can only become nothing")
    );
    assert_eq!(
        serde_json::to_value(&rejection).unwrap(),
        serde_json::json!({
            "type": "illegal_transition",
            "order_id": ID,
            "status": "delivered",
            "allowed": [],
        })
    );
}

// Cancelling.

#[test]
fn cancelling_an_unpaid_order_requests_no_refund() {
    let mut events = history(Pending);
    events.push(settled(Failed, PURCHASE));
    given::<Order>(events)
        .when(move_to(Cancelled, None))
        .then([moved(Cancelled)]);
}

#[test]
fn cancelling_a_paid_order_names_the_purchase_to_refund() {
    let mut events = history(Confirmed);
    events.push(settled(Paid, PURCHASE));
    given::<Order>(events.clone())
        .when(move_to(Cancelled, None))
        .then([cancelled_refunding()]);
    // The refund is then recorded on the cancelled order.
    events.push(cancelled_refunding());
    given::<Order>(events.clone())
        .when(settle(Refunded, PURCHASE))
        .then([settled(Refunded, PURCHASE)]);
    events.push(settled(Refunded, PURCHASE));
    let state = Order::fold(&events);
    assert_eq!(state.status(), Some(Cancelled));
    assert_eq!(state.payment_status(), Some(PaymentStatus::Refunded));
}

#[test]
fn a_refunded_order_cancelled_later_requests_no_second_refund() {
    let mut events = history(Confirmed);
    events.extend([settled(Paid, PURCHASE), settled(Refunded, PURCHASE)]);
    given::<Order>(events)
        .when(move_to(Cancelled, None))
        .then([moved(Cancelled)]);
}

#[test]
fn a_blank_carrier_does_not_decode_from_the_log() {
    assert!(serde_json::from_str::<ShipOrder>(&format!(
        r#"{{"order_id":"{ID}","carrier":" ","tracking_number":"1","at":"2025-01-19T15:04:05Z"}}"#
    ))
    .is_err());
}

// If-Match.

#[test]
fn a_command_on_a_stale_version_is_refused() {
    // Placed (1), confirmed (2).
    let events = history(Confirmed);
    given::<Order>(events.clone())
        .when(move_to(Processing, Some(1)))
        .then_rejected(Rejection::StaleVersion { expected: 1, actual: 2 });
    given::<Order>(events.clone())
        .when(move_to(Processing, Some(3)))
        .then_rejected(Rejection::StaleVersion { expected: 3, actual: 2 });
    given::<Order>(events.clone())
        .when(move_to(Processing, Some(2)))
        .then([moved(Processing)]);
    given::<Order>(events.clone())
        .when(move_to(Processing, None))
        .then([moved(Processing)]);
    // The version is checked before the transition: the client's view is what is wrong.
    given::<Order>(events.clone())
        .when(move_to(Delivered, Some(1)))
        .then_rejected(Rejection::StaleVersion { expected: 1, actual: 2 });
    // Payment commands carry it too.
    let Command::RecordPayment(payment) = pay(PURCHASE, usd(TOTAL)) else {
        unreachable!()
    };
    given::<Order>(events)
        .when(Command::RecordPayment(RecordPayment {
            expected_version: Some(5),
            ..payment
        }))
        .then_rejected(Rejection::StaleVersion { expected: 5, actual: 2 });
}

#[test]
fn every_event_counts_towards_the_version() {
    let mut events = history(Delivered);
    events.extend([
        settled(Failed, PURCHASE),
        settled(Paid, PURCHASE),
        settled(Refunded, PURCHASE),
    ]);
    assert_eq!(Order::fold(&events).version(), 8);
    // Even a fact that changes nothing (a confirmation of a delivered order).
    events.push(moved(Confirmed));
    let state = Order::fold(&events);
    assert_eq!((state.version(), state.status()), (9, Some(Delivered)));
}
