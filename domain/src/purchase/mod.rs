//! The purchase aggregate: a card payment requested, then authorized or declined by the payment
//! gateway, and refunded in whole or in parts once authorized.
//!
//! - `fields`: the validated fields of purchase messages and the [`PaymentMethod`].
//! - commands ([`Command`]) and events ([`Event`]), each declared once with its type name;
//!   [`upcast`] turns superseded event versions into the current shape.
//! - the [`State`] with its [`PurchaseStatus`] and how events evolve it; the rules of `decide`
//!   and the [`Rejection`]s they answer with.

mod command;
mod decide;
mod event;
mod fields;
mod state;
pub mod upcast;

#[cfg(test)]
mod tests;

pub use command::*;
pub use decide::Rejection;
pub use event::*;
pub use fields::*;
pub use state::{PendingRefund, PurchaseStatus, State};

use crate::decider::decider;

decider!(
    /// The purchase aggregate.
    Purchase { decide: decide::decide, evolve: state::evolve }
);
