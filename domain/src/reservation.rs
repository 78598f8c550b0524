//! The stock reservation saga, as a pure function: which commands each event leads to.
//!
//! ```text
//!  OrderPlaced (catalog_items) ──▶ ReserveStock, one per item ──▶ product
//!  StockReserved ────────────────▶ RecordStockReserved ─────────▶ order (the last one: OrderStockReserved)
//!  StockReservationRefused ──────▶ RecordStockShortage ─────────▶ order: OrderCancelled (out_of_stock)
//!  OrderCancelled (stock_released) ▶ ReleaseStock, one per item ─▶ product
//!  OrderShipped (stock_shipped) ──▶ ShipStock, one per item ────▶ product
//! ```
//!
//! Each command's id derives from the event it answers and the item, so a redelivered event leads
//! to the same commands, which the decider answers with their first verdict. Every step is also
//! harmless to decide twice: a product holds at most one reservation per order and releases or
//! ships only what it holds; an order records an item once and a shortage only while pending.
//! Time comes from the event, so the reaction is the same whenever it runs.

use uuid::Uuid;

use crate::order::{self, RecordStockReserved, RecordStockShortage};
use crate::pricing::Sku;
use crate::product::{self, product_id, ReleaseStock, ReserveStock, ShipStock, StockQuantity};
use crate::{Command, Event};

/// The event types the saga reacts to; every other event leads to nothing.
pub const REACTS_TO: [&str; 5] = [
    order::ORDER_PLACED_V3,
    order::ORDER_CANCELLED_V1,
    order::ORDER_SHIPPED_V1,
    product::STOCK_RESERVED_V1,
    product::STOCK_RESERVATION_REFUSED_V1,
];

/// Names the commands of the saga: `uuid_v5(SAGA_NAMESPACE, event id ++ sku)`.
const SAGA_NAMESPACE: Uuid = Uuid::from_u128(0x7374_6f63_6b2d_7361_6761_2d73_7465_7031);

/// The commands `event` (whose id is `event_id`) leads to, each with its id.
pub fn react(event_id: Uuid, event: &Event) -> Vec<(Uuid, Command)> {
    let step = |sku: &Sku, command: Command| (step_id(event_id, sku), command);
    match event {
        Event::Order(order::Event::OrderPlaced(placed)) => placed
            .catalog_items
            .iter()
            .flatten()
            .map(|line| {
                step(
                    &line.sku,
                    reserve(&line.sku, placed.order_id, line.quantity, placed.placed_at),
                )
            })
            .collect(),
        Event::Order(order::Event::OrderCancelled(cancelled)) => each(event_id, &cancelled.stock_released, |sku| {
            product::Command::ReleaseStock(ReleaseStock {
                product_id: product_id(sku),
                order_id: cancelled.order_id,
                at: cancelled.cancelled_at,
            })
        }),
        Event::Order(order::Event::OrderShipped(shipped)) => each(event_id, &shipped.stock_shipped, |sku| {
            product::Command::ShipStock(ShipStock {
                product_id: product_id(sku),
                order_id: shipped.order_id,
                at: shipped.shipped_at,
            })
        }),
        Event::Product(product::Event::StockReserved(reserved)) => {
            let record = RecordStockReserved {
                order_id: reserved.order_id,
                sku: reserved.sku.clone(),
                at: reserved.reserved_at,
            };
            vec![step(
                &reserved.sku,
                Command::Order(order::Command::RecordStockReserved(record)),
            )]
        }
        Event::Product(product::Event::StockReservationRefused(refused)) => {
            let record = RecordStockShortage {
                order_id: refused.order_id,
                sku: refused.sku.clone(),
                at: refused.refused_at,
            };
            vec![step(
                &refused.sku,
                Command::Order(order::Command::RecordStockShortage(record)),
            )]
        }
        _ => Vec::new(),
    }
}

/// One product command per SKU of `skus`, if any.
fn each(event_id: Uuid, skus: &Option<Vec<Sku>>, command: impl Fn(&Sku) -> product::Command) -> Vec<(Uuid, Command)> {
    skus.iter()
        .flatten()
        .map(|sku| (step_id(event_id, sku), Command::Product(command(sku))))
        .collect()
}

fn reserve(sku: &Sku, order_id: Uuid, quantity: StockQuantity, at: chrono::DateTime<chrono::Utc>) -> Command {
    Command::Product(product::Command::ReserveStock(ReserveStock {
        product_id: product_id(sku),
        order_id,
        quantity,
        at,
    }))
}

fn step_id(event_id: Uuid, sku: &Sku) -> Uuid {
    let mut name = event_id.as_bytes().to_vec();
    name.extend_from_slice(sku.as_str().as_bytes());
    Uuid::new_v5(&SAGA_NAMESPACE, &name)
}

#[cfg(test)]
mod tests;
