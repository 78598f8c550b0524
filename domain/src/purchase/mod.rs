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
pub use state::{PurchaseStatus, State};

use crate::Decider;

/// The purchase aggregate.
#[derive(Debug)]
pub struct Purchase;

impl Decider for Purchase {
    type Command = Command;
    type Event = Event;
    type State = State;
    type Rejection = Rejection;

    fn decide(state: &State, command: &Command) -> Result<Vec<Event>, Rejection> {
        decide::decide(state, command)
    }

    fn evolve(state: State, event: &Event) -> State {
        state::evolve(state, event)
    }
}
