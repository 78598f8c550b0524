//! Every rule a product command is decided by, and why one is refused.

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use super::{
    Command, DefinedProduct, Event, ProductChanged, ProductDefined, State, StockAdjusted, StockReceived, StockReleased,
    StockReservationRefused, StockReserved, StockShipped,
};

/// The most stock on hand a product may have: what a PostgreSQL `bigint` holds.
const MAX_ON_HAND: u64 = i64::MAX as u64;

/// Why a product command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Rejection {
    #[error("product {product_id} is not in the catalog")]
    NotFound { product_id: Uuid },
    /// A command named a SKU whose id is not the product's: the edge derives one from the other.
    #[error("product {product_id} is not sold under SKU {sku}")]
    WrongSku { product_id: Uuid, sku: String },
    /// An adjustment would leave less on hand than is held for orders.
    #[error("adjusting by {quantity} would leave {on_hand_after} on hand, below the {reserved} reserved")]
    BelowReserved {
        quantity: i32,
        on_hand_after: i64,
        reserved: u64,
    },
    /// More stock on hand than can be counted.
    #[error("stock on hand cannot exceed {max}")]
    TooMuchStock { max: u64 },
}

pub(super) fn decide(state: &State, command: &Command) -> Result<Vec<Event>, Rejection> {
    let product_id = command.product_id();
    let product = match (state, command) {
        (State::Undefined, Command::DefineProduct(define)) => {
            return Ok(vec![Event::ProductDefined(ProductDefined {
                product_id,
                sku: define.sku.clone(),
                name: define.name.clone(),
                description: define.description.clone(),
                price: define.price,
                defined_at: define.at,
            })])
        }
        (State::Undefined, _) => return Err(Rejection::NotFound { product_id }),
        (State::Defined(product), _) => product,
    };
    let sku = product.sku.clone();
    let event = match command {
        Command::DefineProduct(define) => {
            if define.sku != product.sku {
                return Err(Rejection::WrongSku {
                    product_id,
                    sku: define.sku.as_str().to_owned(),
                });
            }
            if (&define.name, &define.description, define.price) == (&product.name, &product.description, product.price)
            {
                return Ok(Vec::new());
            }
            Event::ProductChanged(ProductChanged {
                product_id,
                sku,
                name: define.name.clone(),
                description: define.description.clone(),
                price: define.price,
                changed_at: define.at,
            })
        }
        Command::ReceiveStock(receive) => Event::StockReceived(StockReceived {
            product_id,
            sku,
            quantity: receive.quantity,
            on_hand: product
                .on_hand
                .checked_add(u64::from(receive.quantity.get()))
                .filter(|on_hand| *on_hand <= MAX_ON_HAND)
                .ok_or(Rejection::TooMuchStock { max: MAX_ON_HAND })?,
            received_at: receive.at,
        }),
        Command::AdjustStock(adjust) => {
            // Both sides fit an i128 whatever their values.
            let after = i128::from(product.on_hand) + i128::from(adjust.quantity.get());
            if after < i128::from(product.reserved) {
                return Err(Rejection::BelowReserved {
                    quantity: adjust.quantity.get(),
                    on_hand_after: i64::try_from(after).unwrap_or(i64::MIN),
                    reserved: product.reserved,
                });
            }
            let on_hand = u64::try_from(after)
                .ok()
                .filter(|on_hand| *on_hand <= MAX_ON_HAND)
                .ok_or(Rejection::TooMuchStock { max: MAX_ON_HAND })?;
            Event::StockAdjusted(StockAdjusted {
                product_id,
                sku,
                quantity: adjust.quantity,
                reason: adjust.reason.clone(),
                on_hand,
                adjusted_at: adjust.at,
            })
        }
        Command::ReserveStock(reserve) => {
            if product.reservations.contains_key(&reserve.order_id) {
                return Ok(Vec::new());
            }
            let available = product.available();
            if u64::from(reserve.quantity.get()) <= available {
                Event::StockReserved(StockReserved {
                    product_id,
                    sku,
                    order_id: reserve.order_id,
                    quantity: reserve.quantity,
                    reserved_at: reserve.at,
                })
            } else {
                Event::StockReservationRefused(StockReservationRefused {
                    product_id,
                    sku,
                    order_id: reserve.order_id,
                    quantity: reserve.quantity,
                    available,
                    refused_at: reserve.at,
                })
            }
        }
        Command::ReleaseStock(release) => match held(product, release.order_id) {
            Some(quantity) => Event::StockReleased(StockReleased {
                product_id,
                sku,
                order_id: release.order_id,
                quantity,
                released_at: release.at,
            }),
            None => return Ok(Vec::new()),
        },
        Command::ShipStock(ship) => match held(product, ship.order_id) {
            Some(quantity) => Event::StockShipped(StockShipped {
                product_id,
                sku,
                order_id: ship.order_id,
                quantity,
                shipped_at: ship.at,
            }),
            None => return Ok(Vec::new()),
        },
    };
    Ok(vec![event])
}

fn held(product: &DefinedProduct, order_id: Uuid) -> Option<super::StockQuantity> {
    product.reservations.get(&order_id).copied()
}
