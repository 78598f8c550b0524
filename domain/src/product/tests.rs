//! Product scenarios, and a property: whatever commands come in whatever order, what is reserved
//! never exceeds what is on hand and each order holds at most one reservation.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::money::{Currency, Money};
use crate::pricing::Sku;
use crate::testing::given;
use crate::Decider;

const ORDER: Uuid = Uuid::from_u128(1);
const OTHER_ORDER: Uuid = Uuid::from_u128(2);

fn at() -> DateTime<Utc> {
    "2026-12-01T10:00:00Z".parse().unwrap()
}

fn sku() -> Sku {
    Sku::parse("TEA-1").unwrap()
}

fn id() -> Uuid {
    product_id(&sku())
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::parse("currency", "USD").unwrap()).unwrap()
}

fn define(price_minor: i64) -> DefineProduct {
    DefineProduct {
        product_id: id(),
        sku: sku(),
        name: ProductName::parse("Green tea").unwrap(),
        description: None,
        price: usd(price_minor),
        at: at(),
    }
}

fn defined() -> Event {
    Event::ProductDefined(ProductDefined {
        product_id: id(),
        sku: sku(),
        name: ProductName::parse("Green tea").unwrap(),
        description: None,
        price: usd(450),
        defined_at: at(),
    })
}

fn received(quantity: i64, on_hand: u64) -> Event {
    Event::StockReceived(StockReceived {
        product_id: id(),
        sku: sku(),
        quantity: StockQuantity::new(quantity).unwrap(),
        on_hand,
        received_at: at(),
    })
}

fn reserved(order_id: Uuid, quantity: i64) -> Event {
    Event::StockReserved(StockReserved {
        product_id: id(),
        sku: sku(),
        order_id,
        quantity: StockQuantity::new(quantity).unwrap(),
        reserved_at: at(),
    })
}

fn reserve(order_id: Uuid, quantity: i64) -> Command {
    Command::ReserveStock(ReserveStock {
        product_id: id(),
        order_id,
        quantity: StockQuantity::new(quantity).unwrap(),
        at: at(),
    })
}

fn adjust(quantity: i64) -> Command {
    Command::AdjustStock(AdjustStock {
        product_id: id(),
        quantity: StockDelta::new(quantity).unwrap(),
        reason: AdjustmentReason::parse("counted").unwrap(),
        at: at(),
    })
}

#[test]
fn the_id_of_a_product_is_its_skus_and_no_other() {
    assert_eq!(product_id(&sku()), product_id(&Sku::parse("TEA-1").unwrap()));
    assert_ne!(product_id(&sku()), product_id(&Sku::parse("tea-1").unwrap()));
}

#[test]
fn defining_a_new_product_puts_it_in_the_catalog_without_stock() {
    given::<Product>([])
        .when(Command::DefineProduct(define(450)))
        .then([defined()]);
    let state = Product::fold(&[defined()]);
    let State::Defined(product) = state else {
        panic!("{state:?}")
    };
    assert_eq!((product.on_hand, product.reserved, product.available()), (0, 0, 0));
}

#[test]
fn defining_it_again_the_same_changes_nothing_and_a_new_price_changes_it() {
    given::<Product>([defined()])
        .when(Command::DefineProduct(define(450)))
        .then([]);
    given::<Product>([defined()])
        .when(Command::DefineProduct(define(500)))
        .then([Event::ProductChanged(ProductChanged {
            product_id: id(),
            sku: sku(),
            name: ProductName::parse("Green tea").unwrap(),
            description: None,
            price: usd(500),
            changed_at: at(),
        })]);
}

#[test]
fn stock_of_a_product_not_in_the_catalog_is_refused() {
    given::<Product>([])
        .when(reserve(ORDER, 1))
        .then_rejected(Rejection::NotFound { product_id: id() });
}

#[test]
fn receipts_add_to_the_stock_on_hand() {
    given::<Product>([defined(), received(5, 5)])
        .when(Command::ReceiveStock(ReceiveStock {
            product_id: id(),
            quantity: StockQuantity::new(3).unwrap(),
            at: at(),
        }))
        .then([received(3, 8)]);
}

#[test]
fn a_reservation_takes_what_is_available_and_no_more() {
    given::<Product>([defined(), received(10, 10), reserved(OTHER_ORDER, 7)])
        .when(reserve(ORDER, 3))
        .then([reserved(ORDER, 3)]);
    given::<Product>([defined(), received(10, 10), reserved(OTHER_ORDER, 7)])
        .when(reserve(ORDER, 4))
        .then([Event::StockReservationRefused(StockReservationRefused {
            product_id: id(),
            sku: sku(),
            order_id: ORDER,
            quantity: StockQuantity::new(4).unwrap(),
            available: 3,
            refused_at: at(),
        })]);
}

#[test]
fn reserving_again_for_the_same_order_changes_nothing() {
    given::<Product>([defined(), received(10, 10), reserved(ORDER, 3)])
        .when(reserve(ORDER, 3))
        .then([]);
}

#[test]
fn releasing_gives_the_units_back_and_shipping_takes_them_off_hand_once() {
    let history = [defined(), received(10, 10), reserved(ORDER, 3)];
    let (product_id, order_id, at, quantity) = (id(), ORDER, at(), StockQuantity::new(3).unwrap());
    let cases = [
        (
            "release",
            Command::ReleaseStock(ReleaseStock {
                product_id,
                order_id,
                at,
            }),
            Event::StockReleased(StockReleased {
                product_id,
                sku: sku(),
                order_id,
                quantity,
                released_at: at,
            }),
            10,
        ),
        (
            "ship",
            Command::ShipStock(ShipStock {
                product_id,
                order_id,
                at,
            }),
            Event::StockShipped(StockShipped {
                product_id,
                sku: sku(),
                order_id,
                quantity,
                shipped_at: at,
            }),
            7,
        ),
    ];
    for (case, command, event, on_hand_after) in cases {
        let state = Product::fold(&history);
        assert_eq!(Product::decide(&state, &command), Ok(vec![event.clone()]), "{case}");
        let state = Product::evolve(state, &event);
        let State::Defined(product) = &state else {
            panic!("{case}: {state:?}")
        };
        assert_eq!((product.on_hand, product.reserved), (on_hand_after, 0), "{case}");
        assert_eq!(Product::decide(&state, &command), Ok(vec![]), "{case} again");
    }
}

#[test]
fn an_adjustment_never_leaves_less_on_hand_than_is_reserved() {
    given::<Product>([defined(), received(10, 10), reserved(ORDER, 6)])
        .when(adjust(-5))
        .then_rejected(Rejection::BelowReserved {
            quantity: -5,
            on_hand_after: 5,
            reserved: 6,
        });
    given::<Product>([defined(), received(10, 10), reserved(ORDER, 6)])
        .when(adjust(-4))
        .then([Event::StockAdjusted(StockAdjusted {
            product_id: id(),
            sku: sku(),
            quantity: StockDelta::new(-4).unwrap(),
            reason: AdjustmentReason::parse("counted").unwrap(),
            on_hand: 6,
            adjusted_at: at(),
        })]);
}

#[test]
fn quantities_outside_their_range_are_refused() {
    assert!(StockQuantity::new(0).is_err());
    assert!(StockQuantity::new(1_000_001).is_err());
    assert!(StockDelta::new(0).is_err());
    assert!(StockDelta::new(-1_000_001).is_err());
    assert_eq!(StockDelta::new(-1_000_000).unwrap().get(), -1_000_000);
}

fn any_command() -> impl Strategy<Value = Command> {
    let order = (0u128..6).prop_map(Uuid::from_u128);
    prop_oneof![
        (1i64..20).prop_map(|quantity| Command::ReceiveStock(ReceiveStock {
            product_id: id(),
            quantity: StockQuantity::new(quantity).unwrap(),
            at: at(),
        })),
        (-20i64..20)
            .prop_filter("non-zero", |quantity| *quantity != 0)
            .prop_map(adjust),
        (order.clone(), 1i64..10).prop_map(|(order, quantity)| reserve(order, quantity)),
        order.clone().prop_map(|order_id| Command::ReleaseStock(ReleaseStock {
            product_id: id(),
            order_id,
            at: at(),
        })),
        order.prop_map(|order_id| Command::ShipStock(ShipStock {
            product_id: id(),
            order_id,
            at: at(),
        })),
    ]
}

proptest! {
    #[test]
    fn reserved_never_exceeds_on_hand(commands in proptest::collection::vec(any_command(), 0..60)) {
        let mut state = Product::fold(&[defined()]);
        for command in &commands {
            if let Ok(events) = Product::decide(&state, command) {
                state = events.iter().fold(state, Product::evolve);
            }
            let State::Defined(product) = &state else { panic!("{state:?}") };
            prop_assert!(product.reserved <= product.on_hand);
            prop_assert_eq!(
                product.reserved,
                product.reservations.values().map(|held| u64::from(held.get())).sum::<u64>()
            );
        }
    }
}
