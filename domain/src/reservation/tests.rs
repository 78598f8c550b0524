//! The saga played out in memory over every aggregate: commands decided one at a time, each
//! event's reactions queued behind it, until nothing is left to do.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::*;
use crate::money::{Currency, Money};
use crate::order::{CancelOrder, CancelReason, OrderName, PlaceOrder, StockStatus, OUT_OF_STOCK};
use crate::product::{DefineProduct, ProductName, ReceiveStock, StockLine};
use crate::{Aggregates, Decider, Message, State};

fn at() -> DateTime<Utc> {
    "2026-12-01T10:00:00Z".parse().unwrap()
}

fn sku(raw: &str) -> Sku {
    Sku::parse(raw).unwrap()
}

/// Every aggregate's state, and the events written, in order.
#[derive(Default)]
struct World {
    states: HashMap<Uuid, State>,
    log: Vec<(Uuid, Event)>,
    /// Deliver every event's reactions twice, as a reactor restarting before its commit would.
    redeliver: bool,
}

impl World {
    /// Decides `command` and everything it leads to.
    fn run(&mut self, command: Command) {
        let mut queue = VecDeque::from([(Uuid::new_v5(&Uuid::NAMESPACE_OID, b"client"), command)]);
        while let Some((command_id, command)) = queue.pop_front() {
            let state = self.states.remove(&command.aggregate_id()).unwrap_or_default();
            let events = Aggregates::decide(&state, &command).unwrap_or_default();
            let mut state = state;
            for (index, event) in events.into_iter().enumerate() {
                state = Aggregates::evolve(state, &event);
                let event_id = Uuid::new_v5(&command_id, &index.to_be_bytes());
                let reactions = react(event_id, &event);
                if self.redeliver {
                    queue.extend(reactions.clone());
                }
                queue.extend(reactions);
                self.log.push((event_id, event));
            }
            self.states.insert(command.aggregate_id(), state);
        }
    }

    fn product(&self, sku: &Sku) -> product::DefinedProduct {
        match self.states.get(&product_id(sku)) {
            Some(State::Product(product::State::Defined(product))) => product.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn order(&self, order_id: Uuid) -> order::PlacedOrder {
        match self.states.get(&order_id) {
            Some(State::Order(order::State::Placed(order))) => order.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn stock(&mut self, raw: &str, on_hand: i64) {
        let sku = sku(raw);
        self.run(Command::Product(product::Command::DefineProduct(DefineProduct {
            product_id: product_id(&sku),
            sku: sku.clone(),
            name: ProductName::parse(raw).unwrap(),
            description: None,
            price: Money::from_minor(100, Currency::parse("currency", "USD").unwrap()).unwrap(),
            at: at(),
        })));
        self.run(Command::Product(product::Command::ReceiveStock(ReceiveStock {
            product_id: product_id(&sku),
            quantity: StockQuantity::new(on_hand).unwrap(),
            at: at(),
        })));
    }

    fn place(&mut self, order_id: Uuid, items: &[(&str, i64)]) {
        let catalog_items = items
            .iter()
            .map(|(raw, quantity)| StockLine {
                sku: sku(raw),
                quantity: StockQuantity::new(*quantity).unwrap(),
            })
            .collect();
        self.run(Command::Order(order::Command::PlaceOrder(PlaceOrder {
            order_id,
            name: OrderName::parse("John Doe").unwrap(),
            note: None,
            placed_at: at(),
            details: None,
            channel: None,
            user_id: None,
            catalog_items: Some(catalog_items),
        })));
    }

    fn cancel(&mut self, order_id: Uuid) {
        self.run(Command::Order(order::Command::CancelOrder(CancelOrder {
            order_id,
            reason: CancelReason::parse("changed my mind").unwrap(),
            expected_version: None,
            at: at(),
            acting_user: None,
        })));
    }
}

/// One order for 3 TEA and 2 CUP, with 10 TEA and `cups` CUP in stock, played out twice: with each
/// reaction delivered once, and with each delivered twice: a test holds both to the same outcome.
fn tea_and_cups_ordered(cups: i64) -> [(bool, World); 2] {
    [false, true].map(|redeliver| {
        let mut world = World {
            redeliver,
            ..World::default()
        };
        world.stock("TEA", 10);
        world.stock("CUP", cups);
        world.place(Uuid::from_u128(1), &[("TEA", 3), ("CUP", 2)]);
        (redeliver, world)
    })
}

#[test]
fn an_order_whose_items_are_in_stock_holds_them_all() {
    for (redeliver, world) in tea_and_cups_ordered(2) {
        let order = world.order(Uuid::from_u128(1));
        assert_eq!(order.stock_status, StockStatus::Reserved, "redeliver: {redeliver}");
        assert_eq!(world.product(&sku("TEA")).available(), 7);
        assert_eq!(world.product(&sku("CUP")).available(), 0);
    }
}

#[test]
fn a_shortage_of_one_item_cancels_the_order_and_gives_back_the_others() {
    for (redeliver, world) in tea_and_cups_ordered(1) {
        let order = world.order(Uuid::from_u128(1));
        assert_eq!(order.status, order::OrderStatus::Cancelled);
        assert_eq!(order.stock_status, StockStatus::Released);
        let reasons: Vec<&str> = world
            .log
            .iter()
            .filter_map(|(_, event)| match event {
                Event::Order(order::Event::OrderCancelled(cancelled)) => Some(cancelled.reason.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(reasons, [OUT_OF_STOCK]);
        for (raw, on_hand) in [("TEA", 10), ("CUP", 1)] {
            let product = world.product(&sku(raw));
            assert_eq!(
                (product.on_hand, product.reserved),
                (on_hand, 0),
                "{raw}, redeliver: {redeliver}"
            );
        }
    }
}

#[test]
fn cancelling_gives_the_stock_back_and_shipping_takes_it() {
    let mut world = World::default();
    world.stock("TEA", 10);
    world.place(Uuid::from_u128(1), &[("TEA", 3)]);
    world.place(Uuid::from_u128(2), &[("TEA", 4)]);
    world.cancel(Uuid::from_u128(1));
    assert_eq!(world.order(Uuid::from_u128(1)).stock_status, StockStatus::Released);
    assert_eq!(world.product(&sku("TEA")).reserved, 4);
    for command in [
        order::Command::ConfirmOrder(order::ConfirmOrder {
            order_id: Uuid::from_u128(2),
            expected_version: None,
            at: at(),
        }),
        order::Command::StartProcessing(order::StartProcessing {
            order_id: Uuid::from_u128(2),
            expected_version: None,
            at: at(),
        }),
        order::Command::ShipOrder(order::ShipOrder {
            order_id: Uuid::from_u128(2),
            carrier: order::Carrier::parse("UPS").unwrap(),
            tracking_number: order::TrackingNumber::parse("1Z").unwrap(),
            expected_version: None,
            at: at(),
        }),
    ] {
        world.run(Command::Order(command));
    }
    assert_eq!(world.order(Uuid::from_u128(2)).stock_status, StockStatus::Shipped);
    let tea = world.product(&sku("TEA"));
    assert_eq!((tea.on_hand, tea.reserved), (6, 0));
}

#[test]
fn fifty_orders_for_ten_units_leave_exactly_ten_reserved() {
    let mut world = World::default();
    world.stock("LAST", 10);
    for n in 0..50 {
        world.place(Uuid::from_u128(100 + n), &[("LAST", 1)]);
    }
    let statuses: Vec<StockStatus> = (0..50)
        .map(|n| world.order(Uuid::from_u128(100 + n)).stock_status)
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == StockStatus::Reserved).count(), 10);
    assert_eq!(statuses.iter().filter(|s| **s == StockStatus::Released).count(), 40);
    let last = world.product(&sku("LAST"));
    assert_eq!((last.on_hand, last.reserved, last.available()), (10, 10, 0));
}

#[test]
fn the_same_event_always_leads_to_the_same_commands() {
    let mut world = World::default();
    world.stock("TEA", 10);
    world.place(Uuid::from_u128(1), &[("TEA", 3)]);
    for (event_id, event) in &world.log {
        assert_eq!(react(*event_id, event), react(*event_id, event));
        if !react(*event_id, event).is_empty() {
            assert!(REACTS_TO.contains(&event.message_type()), "{}", event.message_type());
        }
    }
}

#[test]
fn an_order_still_reserving_its_stock_cannot_start_processing_and_a_late_shortage_changes_nothing() {
    let order_id = Uuid::from_u128(1);
    let placed = order::Event::OrderPlaced(order::OrderPlaced {
        order_id,
        name: OrderName::parse("John Doe").unwrap(),
        note: None,
        placed_at: at(),
        details: None,
        channel: order::Channel::Api,
        user_id: None,
        catalog_items: Some(vec![StockLine {
            sku: sku("TEA"),
            quantity: StockQuantity::new(1).unwrap(),
        }]),
    });
    let confirmed = order::Event::OrderConfirmed(order::OrderConfirmed {
        order_id,
        confirmed_at: at(),
    });
    let start = order::Command::StartProcessing(order::StartProcessing {
        order_id,
        expected_version: None,
        at: at(),
    });
    crate::testing::given::<order::Order>([placed.clone(), confirmed.clone()])
        .when(start)
        .then_rejected(order::Rejection::StockPending { order_id });
    let reserved = order::Event::OrderStockReserved(order::OrderStockReserved {
        order_id,
        reserved_at: at(),
    });
    let shortage = order::Command::RecordStockShortage(RecordStockShortage {
        order_id,
        sku: sku("TEA"),
        at: at(),
    });
    crate::testing::given::<order::Order>([placed, confirmed, reserved])
        .when(shortage)
        .then([]);
}
