//! What a product's history adds up to, and how each fact changes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Event, ProductDescription, ProductName, StockQuantity};
use crate::money::Money;
use crate::pricing::Sku;

/// Serialisable so the decider can keep it in its local store and changelog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    #[default]
    Undefined,
    Defined(Product),
}

/// A product in the catalog: all that `decide` reads of its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub product_id: Uuid,
    pub sku: Sku,
    pub name: ProductName,
    pub description: Option<ProductDescription>,
    pub price: Money,
    pub on_hand: u64,
    /// The sum of `reservations`.
    pub reserved: u64,
    /// What each order with stock held holds. Only open reservations: a released or shipped one is
    /// gone, so the state grows with the orders in flight, not with all orders ever.
    pub reservations: BTreeMap<Uuid, StockQuantity>,
}

impl Product {
    /// What a new reservation may take.
    pub fn available(&self) -> u64 {
        self.on_hand.saturating_sub(self.reserved)
    }
}

/// Applies a fact. Stock figures saturate rather than wrap: a fact that does not fit the state
/// cannot have been decided here.
pub(super) fn evolve(state: State, event: &Event) -> State {
    let mut product = match (state, event) {
        (State::Undefined, Event::ProductDefined(defined)) => {
            return State::Defined(Product {
                product_id: defined.product_id,
                sku: defined.sku.clone(),
                name: defined.name.clone(),
                description: defined.description.clone(),
                price: defined.price,
                on_hand: 0,
                reserved: 0,
                reservations: BTreeMap::new(),
            })
        }
        (State::Undefined, _) => return State::Undefined,
        (State::Defined(product), _) => product,
    };
    match event {
        Event::ProductDefined(_) => {}
        Event::ProductChanged(changed) => {
            product.name = changed.name.clone();
            product.description = changed.description.clone();
            product.price = changed.price;
        }
        Event::StockReceived(received) => product.on_hand = received.on_hand,
        Event::StockAdjusted(adjusted) => product.on_hand = adjusted.on_hand,
        Event::StockReserved(reserved) => {
            product.reserved = product.reserved.saturating_add(u64::from(reserved.quantity.get()));
            product.reservations.insert(reserved.order_id, reserved.quantity);
        }
        Event::StockReservationRefused(_) => {}
        Event::StockReleased(released) => {
            if let Some(held) = product.reservations.remove(&released.order_id) {
                product.reserved = product.reserved.saturating_sub(u64::from(held.get()));
            }
        }
        Event::StockShipped(shipped) => {
            if let Some(held) = product.reservations.remove(&shipped.order_id) {
                product.reserved = product.reserved.saturating_sub(u64::from(held.get()));
                product.on_hand = product.on_hand.saturating_sub(u64::from(held.get()));
            }
        }
    }
    State::Defined(product)
}
