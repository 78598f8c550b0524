//! Every aggregate behind one [`Decider`], so the infrastructure hosts them all the same way:
//! commands and events of any aggregate travel on the same topics, keyed by aggregate id.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::decider::decider;
use crate::message::{DecodeError, Message};
use crate::{order, product, purchase, Decider};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Order(order::Command),
    Purchase(purchase::Command),
    Product(product::Command),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Order(order::Event),
    Purchase(purchase::Event),
    Product(product::Event),
}

/// The state of one aggregate id, whichever aggregate it turned out to be. Serialisable: the
/// decider keeps it in its local store and changelog instead of folding the whole log again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    #[default]
    Unknown,
    Order(order::State),
    Purchase(purchase::State),
    Product(product::State),
}

#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "aggregate", content = "reason", rename_all = "snake_case")]
pub enum Rejection {
    #[error(transparent)]
    Order(order::Rejection),
    #[error(transparent)]
    Purchase(purchase::Rejection),
    #[error(transparent)]
    Product(product::Rejection),
    /// A client reused an id of one aggregate for another kind of aggregate.
    #[error("{aggregate_id} already identifies a different kind of aggregate")]
    WrongAggregate { aggregate_id: Uuid },
}

decider!(
    /// All aggregates, dispatched by command.
    Aggregates { decide: decide, evolve: evolve }
);

fn decide(state: &State, command: &Command) -> Result<Vec<Event>, Rejection> {
    match (state, command) {
        (State::Unknown, Command::Order(c)) => {
            decide_with::<order::Order>(&order::State::default(), c, Event::Order, Rejection::Order)
        }
        (State::Order(s), Command::Order(c)) => decide_with::<order::Order>(s, c, Event::Order, Rejection::Order),
        (State::Unknown, Command::Purchase(c)) => {
            decide_with::<purchase::Purchase>(&purchase::State::default(), c, Event::Purchase, Rejection::Purchase)
        }
        (State::Purchase(s), Command::Purchase(c)) => {
            decide_with::<purchase::Purchase>(s, c, Event::Purchase, Rejection::Purchase)
        }
        (State::Unknown, Command::Product(c)) => {
            decide_with::<product::Product>(&product::State::default(), c, Event::Product, Rejection::Product)
        }
        (State::Product(s), Command::Product(c)) => {
            decide_with::<product::Product>(s, c, Event::Product, Rejection::Product)
        }
        (_, command) => Err(Rejection::WrongAggregate {
            aggregate_id: command.aggregate_id(),
        }),
    }
}

fn evolve(state: State, event: &Event) -> State {
    match (state, event) {
        (State::Order(s), Event::Order(e)) => State::Order(order::Order::evolve(s, e)),
        (State::Purchase(s), Event::Purchase(e)) => State::Purchase(purchase::Purchase::evolve(s, e)),
        (State::Product(s), Event::Product(e)) => State::Product(product::Product::evolve(s, e)),
        (_, Event::Order(e)) => State::Order(order::Order::evolve(order::State::default(), e)),
        (_, Event::Purchase(e)) => State::Purchase(purchase::Purchase::evolve(purchase::State::default(), e)),
        (_, Event::Product(e)) => State::Product(product::Product::evolve(product::State::default(), e)),
    }
}

fn decide_with<D: Decider>(
    state: &D::State,
    command: &D::Command,
    event: fn(D::Event) -> Event,
    rejection: fn(D::Rejection) -> Rejection,
) -> Result<Vec<Event>, Rejection> {
    D::decide(state, command)
        .map(|events| events.into_iter().map(event).collect())
        .map_err(rejection)
}

/// Implements [`Message`] for an enum over every aggregate's messages of one kind: each variant
/// encodes itself, and decoding asks each aggregate in turn until one knows the type name.
macro_rules! every_aggregate {
    ($enum:ident { $($variant:ident($inner:ty),)+ }) => {
        impl Message for $enum {
            fn message_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(message) => message.message_type(),)+
                }
            }

            fn aggregate_id(&self) -> Uuid {
                match self {
                    $(Self::$variant(message) => message.aggregate_id(),)+
                }
            }

            fn encode(&self) -> Vec<u8> {
                match self {
                    $(Self::$variant(message) => message.encode(),)+
                }
            }

            fn decode(message_type: &str, data: &[u8]) -> Result<Self, DecodeError> {
                $(match <$inner>::decode(message_type, data) {
                    Err(DecodeError::UnknownType(_)) => {}
                    decoded => return decoded.map(Self::$variant),
                })+
                Err(DecodeError::UnknownType(message_type.to_owned()))
            }
        }

        impl $enum {
            /// The schema of every version of every aggregate's messages of this kind.
            #[cfg(feature = "schema")]
            pub fn schemas() -> Vec<crate::message::VersionSchema> {
                [$(<$inner>::schemas()),+].into_iter().flatten().collect()
            }
        }
    };
}

every_aggregate!(Command {
    Order(order::Command),
    Purchase(purchase::Command),
    Product(product::Command),
});

every_aggregate!(Event {
    Order(order::Event),
    Purchase(purchase::Event),
    Product(product::Event),
});

impl Event {
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Self::Order(e) => e.occurred_at(),
            Self::Purchase(e) => e.occurred_at(),
            Self::Product(e) => e.occurred_at(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{OrderName, OrderPlaced, PlaceOrder};

    #[test]
    fn an_id_of_one_kind_of_aggregate_cannot_start_another() {
        let id = Uuid::from_u128(9);
        let placed_at = "2025-01-19T15:04:05Z".parse().unwrap();
        let name = OrderName::parse("John Doe").unwrap();
        let order = Event::Order(order::Event::OrderPlaced(OrderPlaced {
            order_id: id,
            name: name.clone(),
            note: None,
            placed_at,
            details: None,
            channel: order::Channel::Api,
            user_id: None,
            catalog_items: None,
        }));
        let state = Aggregates::fold([&order]);
        assert!(matches!(state, State::Order(_)));
        let refund = Command::Purchase(purchase::Command::RecordDecline(purchase::RecordDecline {
            purchase_id: id,
            reason: "x".to_owned(),
            declined_at: placed_at,
        }));
        assert_eq!(
            Aggregates::decide(&state, &refund),
            Err(Rejection::WrongAggregate { aggregate_id: id })
        );
        let again = Command::Order(order::Command::PlaceOrder(PlaceOrder {
            order_id: id,
            name,
            note: None,
            placed_at,
            details: None,
            channel: None,
            user_id: None,
            catalog_items: None,
        }));
        assert!(matches!(Aggregates::decide(&state, &again), Err(Rejection::Order(_))));
    }

    #[test]
    fn messages_of_every_aggregate_decode_through_one_entry_point() {
        let data = br#"{"purchase_id":"00000000-0000-0000-0000-000000000001","reason":"card_declined","declined_at":"2025-01-19T15:04:07Z"}"#;
        let event = Event::decode(purchase::PURCHASE_DECLINED_V1, data).unwrap();
        assert_eq!(event.message_type(), purchase::PURCHASE_DECLINED_V2);
        assert!(matches!(
            Event::decode("orderstream.nothing.v1", data),
            Err(DecodeError::UnknownType(_))
        ));
    }
}
