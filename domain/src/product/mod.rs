//! The product aggregate: a catalog entry under its SKU, with the stock on hand and the part of it
//! held for orders.
//!
//! A product is defined once and changed by defining it again (`PUT`): the same name, description
//! and price change nothing. Stock comes in by receipts, is corrected by adjustments (never below
//! what is reserved), is reserved for an order, and a reservation ends released (the order was
//! cancelled) or shipped (the stock left: on hand goes down with it). `available = on_hand -
//! reserved` is what a new reservation may take; one that asks for more is refused, and the
//! refusal is a fact too, so the order hears of it.
//!
//! A product's id derives from its SKU ([`product_id`]), so every command about one SKU lands on
//! the same aggregate and partition, and two orders racing for its last unit are decided one after
//! the other. Reserving again for an order that already holds stock, or releasing or shipping for
//! one that holds none, changes nothing: the stock reservation saga may deliver a step twice.
//!
//! - `fields`: names, descriptions, quantities and [`product_id`].
//! - commands ([`Command`]) and events ([`Event`]), each declared once with its type name.
//! - the [`State`] and how events evolve it; the rules of `decide` and the [`Rejection`]s.

mod command;
mod decide;
mod event;
mod fields;
mod state;

#[cfg(test)]
mod tests;

pub use command::*;
pub use decide::Rejection;
pub use event::*;
pub use fields::*;
pub use state::{Product as DefinedProduct, State};

use crate::decider::decider;

decider!(
    /// The product aggregate.
    Product { decide: decide::decide, evolve: state::evolve }
);
