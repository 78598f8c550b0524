//! The order aggregate: an order is placed once under a customer's name.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::message::{parse, to_json, DecodeError, Message};
use crate::text::{at_most_text, validated_text};
use crate::validation::bounded_text;
use crate::Decider;

/// Type name of [`PlaceOrder`] on the commands topic.
pub const PLACE_ORDER_V1: &str = "orderstream.order.place.v1";
/// Type name of [`OrderPlaced`] on the events topic (`ce_type`).
pub const ORDER_PLACED_V1: &str = "orderstream.order.placed.v1";

validated_text!(
    /// The customer name an order is placed under: trimmed, 1–200 characters.
    OrderName { field: "name", min: 1, max: 200, rule: bounded_text }
);

validated_text!(
    /// A free-text note on an order: at most 2,000 characters, kept as written.
    OrderNote { field: "note", min: 0, max: 2_000, rule: at_most_text }
);

/// Place a new order. The edge stamps `placed_at` and picks `order_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PlaceOrder {
    pub order_id: Uuid,
    pub name: OrderName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<OrderNote>,
    pub placed_at: DateTime<Utc>,
}

/// An order was placed. `placed_at` is the event time read models use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub name: OrderName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<OrderNote>,
    pub placed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    PlaceOrder(PlaceOrder),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    OrderPlaced(OrderPlaced),
}

/// Where an order stands in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum State {
    #[default]
    NotPlaced,
    Placed {
        status: OrderStatus,
    },
}

/// Why an order command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Rejection {
    #[error("order {order_id} has already been placed")]
    AlreadyPlaced { order_id: Uuid },
}

/// The order aggregate.
#[derive(Debug)]
pub struct Order;

impl Decider for Order {
    type Command = Command;
    type Event = Event;
    type State = State;
    type Rejection = Rejection;

    fn decide(state: &State, command: &Command) -> Result<Vec<Event>, Rejection> {
        match (state, command) {
            (State::NotPlaced, Command::PlaceOrder(place)) => Ok(vec![Event::OrderPlaced(OrderPlaced {
                order_id: place.order_id,
                name: place.name.clone(),
                note: place.note.clone(),
                placed_at: place.placed_at,
            })]),
            (State::Placed { .. }, Command::PlaceOrder(place)) => Err(Rejection::AlreadyPlaced {
                order_id: place.order_id,
            }),
        }
    }

    fn evolve(_state: State, event: &Event) -> State {
        match event {
            Event::OrderPlaced(_) => State::Placed {
                status: OrderStatus::Pending,
            },
        }
    }
}

impl Message for Command {
    fn message_type(&self) -> &'static str {
        match self {
            Self::PlaceOrder(_) => PLACE_ORDER_V1,
        }
    }

    fn aggregate_id(&self) -> Uuid {
        match self {
            Self::PlaceOrder(place) => place.order_id,
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Self::PlaceOrder(place) => to_json(place),
        }
    }

    fn decode(message_type: &str, data: &[u8]) -> Result<Self, DecodeError> {
        match message_type {
            PLACE_ORDER_V1 => parse(message_type, data).map(Self::PlaceOrder),
            other => Err(DecodeError::UnknownType(other.to_owned())),
        }
    }
}

impl Message for Event {
    fn message_type(&self) -> &'static str {
        match self {
            Self::OrderPlaced(_) => ORDER_PLACED_V1,
        }
    }

    fn aggregate_id(&self) -> Uuid {
        match self {
            Self::OrderPlaced(placed) => placed.order_id,
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Self::OrderPlaced(placed) => to_json(placed),
        }
    }

    fn decode(message_type: &str, data: &[u8]) -> Result<Self, DecodeError> {
        match message_type {
            ORDER_PLACED_V1 => parse(message_type, data).map(Self::OrderPlaced),
            other => Err(DecodeError::UnknownType(other.to_owned())),
        }
    }
}

impl Event {
    /// When the fact happened, by the clock of the edge that accepted the command.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Self::OrderPlaced(placed) => placed.placed_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;
    use crate::{FieldProblem, InvalidField};
    use proptest::prelude::*;

    fn place(order_id: Uuid, name: &str) -> PlaceOrder {
        PlaceOrder {
            order_id,
            name: OrderName::parse(name).unwrap(),
            note: Some(OrderNote::parse("First order").unwrap()),
            placed_at: "2025-01-19T15:04:05Z".parse().unwrap(),
        }
    }

    fn placed(command: &PlaceOrder) -> Event {
        Event::OrderPlaced(OrderPlaced {
            order_id: command.order_id,
            name: command.name.clone(),
            note: command.note.clone(),
            placed_at: command.placed_at,
        })
    }

    #[test]
    fn placing_a_new_order_records_it_with_the_command_time() {
        let command = place(Uuid::from_u128(1), "John Doe");
        given::<Order>([])
            .when(Command::PlaceOrder(command.clone()))
            .then([placed(&command)]);
    }

    #[test]
    fn placing_the_same_order_twice_is_rejected() {
        let command = place(Uuid::from_u128(1), "John Doe");
        given::<Order>([placed(&command)])
            .when(Command::PlaceOrder(command.clone()))
            .then_rejected(Rejection::AlreadyPlaced {
                order_id: command.order_id,
            });
    }

    #[test]
    fn a_placed_order_is_pending() {
        let command = place(Uuid::from_u128(1), "John Doe");
        assert_eq!(
            Order::fold([&placed(&command)]),
            State::Placed {
                status: OrderStatus::Pending
            }
        );
    }

    #[test]
    fn name_is_trimmed_and_bounded() {
        assert_eq!(OrderName::parse("  John Doe ").unwrap().as_str(), "John Doe");
        assert_eq!(OrderName::parse(&"x".repeat(200)).unwrap().as_str().len(), 200);
        assert_eq!(
            OrderName::parse(&"x".repeat(201)).unwrap_err(),
            InvalidField::new("name", FieldProblem::TooLong { max: 200, actual: 201 })
        );
        assert_eq!(
            OrderName::parse("   ").unwrap_err(),
            InvalidField::new("name", FieldProblem::Blank)
        );
    }

    #[test]
    fn note_is_bounded_but_kept_as_written() {
        assert_eq!(OrderNote::parse(" hi ").unwrap().as_str(), " hi ");
        assert!(OrderNote::parse(&"é".repeat(2_000)).is_ok());
        assert_eq!(
            OrderNote::parse(&"é".repeat(2_001)).unwrap_err(),
            InvalidField::new(
                "note",
                FieldProblem::TooLong {
                    max: 2_000,
                    actual: 2_001
                }
            )
        );
    }

    #[test]
    fn events_round_trip_through_the_wire_format() {
        let event = placed(&place(Uuid::from_u128(7), "Zoë"));
        let decoded = Event::decode(event.message_type(), &event.encode()).unwrap();
        assert_eq!(decoded, event);
        assert_eq!(event.message_type(), "orderstream.order.placed.v1");
    }

    #[test]
    fn decoding_rechecks_the_rules() {
        let data =
            br#"{"order_id":"00000000-0000-0000-0000-000000000001","name":"  ","placed_at":"2025-01-19T15:04:05Z"}"#;
        assert!(matches!(
            Event::decode(ORDER_PLACED_V1, data),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            Event::decode("orderstream.order.vanished.v1", data),
            Err(DecodeError::UnknownType(_))
        ));
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
                }
            }
        }
    }
}
