//! Properties over any sequence of commands or events.

use super::*;
use proptest::prelude::*;

fn any_command() -> impl Strategy<Value = Command> {
    let version = proptest::option::of(0_u64..8);
    let amount = prop_oneof![Just(usd(TOTAL)), (0_i64..10_000).prop_map(usd)];
    let purchase = (2_u128..4).prop_map(Uuid::from_u128);
    let next = proptest::sample::select(MOVES.to_vec());
    let outcome = proptest::sample::select(vec![Failed, Refunded]);
    // Weighted as one arm a command type.
    prop_oneof![
        1 => Just(Command::PlaceOrder(place_priced(example_items()))),
        1 => Just(Command::PlaceOrder(place(ID, "Jane"))),
        5 => (next, version).prop_map(|(status, version)| move_to(status, version)),
        1 => (purchase.clone(), amount).prop_map(|(p, a)| pay(p, a)),
        2 => (outcome, purchase).prop_map(|(status, p)| settle(status, p)),
    ]
}

fn any_event() -> impl Strategy<Value = Event> {
    proptest::sample::select(every_event())
}

/// Checks one step of the state only moved along allowed edges.
fn moved_along_edges(before: &State, after: &State) -> Result<(), TestCaseError> {
    if let (Some(from), Some(to)) = (before.status(), after.status()) {
        prop_assert!(from == to || from.can_become(to), "{} -> {}", from, to);
    }
    if let (Some(from), Some(to)) = (before.payment_status(), after.payment_status()) {
        prop_assert!(from == to || from.can_become(to), "payment {} -> {}", from, to);
    }
    prop_assert!(
        before.status().is_none() || after.status().is_some(),
        "an order was unplaced"
    );
    Ok(())
}

proptest! {
    #[test]
    fn any_accepted_name_is_trimmed_and_within_bounds(raw in "\\PC{0,260}") {
        match OrderName::parse(&raw) {
            Ok(name) => {
                prop_assert_eq!(name.as_str(), raw.trim());
                prop_assert!((1..=OrderName::MAX_CHARS).contains(&name.as_str().chars().count()));
            }
            Err(err) => prop_assert_eq!(err.field, "name"),
        }
    }

    #[test]
    fn an_order_is_placed_exactly_once_whatever_is_retried(ids in proptest::collection::vec(0u128..8, 1..40)) {
        let mut states = std::collections::HashMap::<u128, State>::new();
        let mut accepted = std::collections::HashSet::new();
        for id in ids {
            let command = Command::PlaceOrder(place(Uuid::from_u128(id), "Jane"));
            let state = states.remove(&id).unwrap_or_default();
            match Order::decide(&state, &command) {
                Ok(events) => {
                    prop_assert!(accepted.insert(id), "order {} placed twice", id);
                    states.insert(id, events.iter().fold(state, Order::evolve));
                }
                Err(Rejection::AlreadyPlaced { order_id }) => {
                    prop_assert_eq!(order_id, Uuid::from_u128(id));
                    prop_assert!(accepted.contains(&id));
                    states.insert(id, state);
                }
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }

    #[test]
    fn replaying_decided_events_only_moves_along_allowed_edges(
        commands in proptest::collection::vec(any_command(), 1..60),
    ) {
        let mut state = State::default();
        let mut log = Vec::new();
        for command in commands {
            match Order::decide(&state, &command) {
                Ok(events) => {
                    prop_assert_eq!(events.len(), 1);
                    for event in events {
                        prop_assert_eq!(event.aggregate_id(), ID);
                        let next = Order::evolve(state.clone(), &event);
                        moved_along_edges(&state, &next)?;
                        prop_assert_eq!(next.version(), state.version() + 1);
                        prop_assert_ne!(next.status(), None);
                        state = next;
                        log.push(event);
                    }
                }
                Err(Rejection::StaleVersion { expected, actual }) => {
                    prop_assert_ne!(expected, actual);
                    prop_assert_eq!(actual, state.version());
                }
                Err(_) => {}
            }
        }
        // Replaying the log, through the wire format, rebuilds the same state.
        let replayed: Vec<Event> = log
            .iter()
            .map(|e| Event::decode(e.message_type(), &e.encode()).unwrap())
            .collect();
        prop_assert_eq!(Order::fold(&replayed), state.clone());
        prop_assert_eq!(state.version(), log.len() as u64);
    }

    #[test]
    fn folding_any_events_at_all_never_panics_nor_skips_an_edge(
        events in proptest::collection::vec(any_event(), 0..40),
    ) {
        let mut state = State::default();
        for event in &events {
            let next = Order::evolve(state.clone(), event);
            moved_along_edges(&state, &next)?;
            state = next;
        }
    }
}
