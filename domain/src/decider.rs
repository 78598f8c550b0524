//! The decider pattern as a trait, so infrastructure can host any aggregate the same way.

/// An aggregate's pure behaviour: what a command decides given the state, and how facts change it.
pub trait Decider {
    /// An intention, validated at the edge; may be rejected.
    type Command;
    /// A fact that happened; never rejected once written.
    type Event;
    /// What `decide` needs to know, rebuilt by folding events.
    type State: Default + Clone;
    /// Why a command was refused.
    type Rejection;

    /// Every business rule lives here.
    fn decide(state: &Self::State, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Rejection>;

    /// Applies one fact. Never fails: the event already happened.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// The state before any event.
    fn initial_state() -> Self::State {
        Self::State::default()
    }

    /// Folds a history from the initial state.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::initial_state(), Self::evolve)
    }
}

/// Declares `$aggregate`, deciding with `$decide` and evolving with `$evolve`, over the
/// `Command`, `Event`, `State` and `Rejection` in scope where it is invoked.
macro_rules! decider {
    ($(#[$meta:meta])* $aggregate:ident { decide: $decide:path, evolve: $evolve:path $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $aggregate;

        impl $crate::Decider for $aggregate {
            type Command = Command;
            type Event = Event;
            type State = State;
            type Rejection = Rejection;

            fn decide(state: &State, command: &Command) -> Result<Vec<Event>, Rejection> {
                $decide(state, command)
            }

            fn evolve(state: State, event: &Event) -> State {
                $evolve(state, event)
            }
        }
    };
}

pub(crate) use decider;
