//! orderstream's business rules, free of I/O.
//!
//! Each aggregate is one module following the decider pattern: `initial_state()`,
//! `decide(&State, &Command) -> Result<Vec<Event>, Rejection>` holding every rule, and
//! `evolve(State, &Event) -> State` applying facts without ever failing. Time and ids come in on
//! the command; nothing here reads a clock or draws a random number.
//!
//! - [`order`]: placing orders (the order and track-user flow).
//! - [`validation`]: field rules shared by the edge and by decoders, with typed errors.
//! - [`message`]: how commands and events are named and encoded on the log, and decoded back.
//! - [`decider`]: the [`Decider`] trait tying an aggregate's three functions together.
//! - [`testing`]: the `given(..).when(..).then(..)` helper for aggregate tests.

pub mod decider;
pub mod message;
pub mod order;
#[cfg(feature = "schema")]
mod schema;
pub mod testing;
pub mod validation;

pub use decider::Decider;
pub use message::{DecodeError, Message};
pub use validation::{FieldProblem, InvalidField};
