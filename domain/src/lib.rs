//! orderstream's business rules, free of I/O.
//!
//! Each aggregate is one module following the decider pattern: `initial_state()`,
//! `decide(&State, &Command) -> Result<Vec<Event>, Rejection>` holding every rule, and
//! `evolve(State, &Event) -> State` applying facts without ever failing. Time and ids come in on
//! the command; nothing here reads a clock or draws a random number.
//!
//! - [`order`]: orders: placed (optionally with priced line items), then confirmed, processed,
//!   shipped and delivered or cancelled, with their payment recorded, failed or refunded.
//! - [`pricing`]: the pricing policy: line items, subtotal, 8 % tax rounded half to even, flat
//!   shipping under 100.00, total; integer minor units only.
//! - [`money`]: currencies, exact decimals and amounts in minor units; never a float.
//! - [`card`]: card number, expiry and CVC parsed at the edge, masked in `Debug`, and the
//!   [`MaskedCard`](card::MaskedCard) that is all that may be kept.
//! - [`product`]: the catalog: products under their SKU, their price, the stock on hand and what
//!   is reserved for orders.
//! - [`purchase`]: card purchases: requested, authorized or declined, refunded.
//! - [`reservation`]: the stock reservation saga between orders and products, as a pure function
//!   from an event to the commands it leads to.
//! - [`aggregates`]: every aggregate behind one decider, and the top-level command and event types.
//! - [`validation`]: field rules shared by the edge and by decoders, with typed errors, among
//!   them the one rule for free text ([`plain_text`](validation::plain_text)): no control
//!   characters, Unicode NFC.
//! - [`message`]: how commands and events are named and encoded on the log, and decoded back;
//!   each aggregate declares its messages, with every version ever written, in one table.
//! - [`decider`]: the [`Decider`] trait tying an aggregate's three functions together.
//! - [`testing`]: the `given(..).when(..).then(..)` helper for aggregate tests, and example order
//!   events for every crate whose tests decide or fold them.
//!
//! Private helpers: `count` (counts of units), `text` (the validated text newtypes), `wire` (enums with one spelling on the
//! wire and in SQL) and `schema` (hand-written JSON Schemas of newtypes).

pub mod aggregates;
pub mod card;
mod count;
pub mod decider;
pub mod message;
pub mod money;
pub mod order;
pub mod pricing;
pub mod product;
pub mod purchase;
pub mod reservation;
mod schema;
pub mod testing;
mod text;
pub mod validation;
mod wire;

pub use aggregates::{Aggregates, Command, Event, Rejection, State};
pub use decider::Decider;
pub use message::{DecodeError, Message};
pub use validation::{FieldProblem, InvalidField};
