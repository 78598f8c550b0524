//! `given(events).when(command).then(events | rejection)` for aggregate tests, and, for this
//! crate's own tests, a check that a field parser refuses a list of inputs.

use std::fmt::Debug;

use crate::Decider;
#[cfg(test)]
use crate::{FieldProblem, InvalidField};

/// Asserts `parse` refuses every one of `texts` as `field` for the same `problem`.
#[cfg(test)]
#[track_caller]
pub(crate) fn assert_refused<T>(
    parse: impl Fn(&'static str, &str) -> Result<T, InvalidField>,
    field: &'static str,
    texts: &[&str],
    problem: FieldProblem,
) {
    for text in texts {
        assert_eq!(
            parse(field, text).err(),
            Some(InvalidField::new(field, problem.clone())),
            "{text:?}"
        );
    }
}

/// Starts a scenario from a history of events.
pub fn given<D: Decider>(history: impl IntoIterator<Item = D::Event>) -> Given<D> {
    let state = history
        .into_iter()
        .fold(D::initial_state(), |state, event| D::evolve(state, &event));
    Given { state }
}

/// A scenario whose history has been folded into state.
#[derive(Debug)]
pub struct Given<D: Decider> {
    state: D::State,
}

impl<D: Decider> Given<D> {
    /// Decides `command` against the folded state.
    pub fn when(self, command: D::Command) -> Then<D> {
        Then {
            outcome: D::decide(&self.state, &command),
        }
    }
}

/// The decision of a scenario, to be checked.
#[derive(Debug)]
pub struct Then<D: Decider> {
    outcome: Result<Vec<D::Event>, D::Rejection>,
}

impl<D: Decider> Then<D>
where
    D::Event: Debug + PartialEq,
    D::Rejection: Debug + PartialEq,
{
    /// Asserts the command was accepted with exactly these events.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = D::Event>) {
        assert_eq!(self.outcome, Ok(expected.into_iter().collect()));
    }

    /// Asserts the command was rejected for this reason.
    #[track_caller]
    pub fn then_rejected(self, expected: D::Rejection) {
        assert_eq!(self.outcome, Err(expected));
    }
}
