//! Orders on the log: type names, the JSON of every message, decoding and upcasting.

use super::*;
use crate::pricing::PricingError;
use crate::{FieldProblem, InvalidField};

// The wire.

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
fn commands_and_events_round_trip_through_the_wire_format() {
    for command in every_command() {
        let decoded = Command::decode(command.message_type(), &command.encode()).unwrap();
        assert_eq!(decoded, command);
        assert_eq!(command.aggregate_id(), ID);
    }
    for event in every_event() {
        let decoded = Event::decode(event.message_type(), &event.encode()).unwrap();
        assert_eq!(decoded, event);
        assert_eq!(event.aggregate_id(), ID);
    }
}

#[test]
fn every_message_has_its_versioned_type_name() {
    let commands: Vec<&str> = every_command().iter().map(Message::message_type).collect();
    assert_eq!(
        commands,
        [
            "orderstream.order.place.v1",
            "orderstream.order.place.v1",
            "orderstream.order.confirm.v1",
            "orderstream.order.start-processing.v1",
            "orderstream.order.ship.v1",
            "orderstream.order.deliver.v1",
            "orderstream.order.cancel.v1",
            "orderstream.order.record-payment.v1",
            "orderstream.order.record-payment-failure.v1",
            "orderstream.order.record-refund.v1",
        ]
    );
    let events: Vec<&str> = every_event().iter().map(Message::message_type).collect();
    assert_eq!(
        events,
        [
            "orderstream.order.placed.v3",
            "orderstream.order.placed.v3",
            "orderstream.order.confirmed.v1",
            "orderstream.order.processing-started.v1",
            "orderstream.order.shipped.v1",
            "orderstream.order.delivered.v1",
            "orderstream.order.cancelled.v1",
            "orderstream.order.cancelled.v1",
            "orderstream.order.paid.v1",
            "orderstream.order.payment-failed.v1",
            "orderstream.order.refunded.v1",
        ]
    );
    let times: Vec<DateTime<Utc>> = every_event().iter().map(Event::occurred_at).collect();
    assert_eq!(
        times,
        [t(0), t(0), t(1), t(2), t(3), t(4), t(5), t(5), t(6), t(7), t(8)]
    );
}

#[test]
fn orders_without_items_keep_the_seed_wire_format() {
    // The checked-in fixtures of both versions, byte for byte.
    let place_v1 = br#"{"order_id":"dcc4717c-20c6-45db-ad30-f29761383d70","name":"John Doe","note":"First order","placed_at":"2025-01-19T15:04:05.000000Z"}"#;
    let Command::PlaceOrder(command) = Command::decode(PLACE_ORDER_V1, place_v1).unwrap() else {
        unreachable!()
    };
    assert_eq!(command.details, None);
    let without_note =
        r#"{"order_id":"8daafe3b-2a39-5aea-82f7-b0d0005ce854","name":"Zoë","placed_at":"2026-11-21T20:07:49.090451Z"}"#
            .as_bytes();
    let Event::OrderPlaced(event) = Event::decode(ORDER_PLACED_V1, without_note).unwrap() else {
        unreachable!()
    };
    assert_eq!((event.note, event.details), (None, None));
    assert_eq!(event.channel, Channel::Api);
    // And an order without items is written as before, plus its channel (v2).
    let json: serde_json::Value = serde_json::from_slice(&placed(&place(ID, "Zoë")).encode()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "order_id": ID,
            "name": "Zoë",
            "note": "First order",
            "placed_at": "2025-01-19T15:04:05Z",
            "channel": "api",
        })
    );
}

#[test]
fn priced_details_travel_with_their_totals() {
    let json: serde_json::Value = serde_json::from_slice(&placed_priced().encode()).unwrap();
    assert_eq!(
        json["details"],
        serde_json::json!({
            "user_id": USER,
            "currency": "USD",
            "items": [
                {"sku": "SKU-1", "name": "Item SKU-1", "quantity": 2, "unit_price": {"minor": 1234, "currency": "USD"}},
                {"sku": "SKU-2", "name": "Item SKU-2", "quantity": 1, "unit_price": {"minor": 500, "currency": "USD"}},
            ],
            "totals": {
                "subtotal": {"minor": 2968, "currency": "USD"},
                "tax": {"minor": 237, "currency": "USD"},
                "shipping": {"minor": 999, "currency": "USD"},
                "total": {"minor": 4204, "currency": "USD"},
            },
        })
    );
}

#[test]
fn decoding_rechecks_the_rules() {
    let data = br#"{"order_id":"00000000-0000-0000-0000-000000000001","name":"  ","placed_at":"2025-01-19T15:04:05Z"}"#;
    assert!(matches!(
        Event::decode(ORDER_PLACED_V1, data),
        Err(DecodeError::Malformed { .. })
    ));
    let blank_v2 = br#"{"order_id":"00000000-0000-0000-0000-000000000001","name":"  ","placed_at":"2025-01-19T15:04:05Z","channel":"web"}"#;
    assert!(matches!(
        Event::decode(ORDER_PLACED_V2, blank_v2),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(matches!(
        Event::decode("orderstream.order.vanished.v1", data),
        Err(DecodeError::UnknownType(_))
    ));
    let zero_quantity = br#"{"order_id":"00000000-0000-0000-0000-000000000001","name":"A","placed_at":"2025-01-19T15:04:05Z","details":{"currency":"USD","items":[{"sku":"A","name":"A","quantity":0,"unit_price":{"minor":1,"currency":"USD"}}]}}"#;
    assert!(matches!(
        Command::decode(PLACE_ORDER_V1, zero_quantity),
        Err(DecodeError::Malformed { .. })
    ));
    let blank_reason =
        br#"{"order_id":"00000000-0000-0000-0000-000000000001","reason":" ","at":"2025-01-19T15:04:05Z"}"#;
    assert!(matches!(
        Command::decode(CANCEL_ORDER_V1, blank_reason),
        Err(DecodeError::Malformed { .. })
    ));
}

// Evolution: `orderstream.order.placed.v1` is upcast, `v2` is what is written.

const PLACED_V1: &[u8] = br#"{"order_id":"00000000-0000-0000-0000-000000000001","name":"Jane","note":"hi","placed_at":"2025-01-19T15:04:05Z","details":{"user_id":"00000000-0000-0000-0000-000000000004","currency":"USD","items":[{"sku":"SKU-1","name":"Item SKU-1","quantity":2,"unit_price":{"minor":1234,"currency":"USD"}}],"totals":{"subtotal":{"minor":2468,"currency":"USD"},"tax":{"minor":197,"currency":"USD"},"shipping":{"minor":999,"currency":"USD"},"total":{"minor":3664,"currency":"USD"}}}}"#;

#[test]
fn a_v1_order_placed_is_upcast_to_the_current_shape_placed_through_the_api() {
    let Event::OrderPlaced(event) = Event::decode(ORDER_PLACED_V1, PLACED_V1).unwrap() else {
        unreachable!()
    };
    assert_eq!(event.channel, Channel::Api);
    assert_eq!(event.order_id, ID);
    assert_eq!(event.name.as_str(), "Jane");
    assert_eq!(event.note.as_ref().map(OrderNote::as_str), Some("hi"));
    let details = event.details.as_ref().unwrap();
    assert_eq!((details.user_id, details.totals.total), (Some(USER), usd(3664)));
    // The upcast keeps every v1 field as it was and only adds the channel and the owner.
    let v1: upcast::OrderPlacedV1 = serde_json::from_slice(PLACED_V1).unwrap();
    let kept = serde_json::to_value(&v1).unwrap();
    let mut current = serde_json::to_value(upcast::order_placed_v1(v1)).unwrap();
    let fields = current.as_object_mut().unwrap();
    assert_eq!(fields.remove("channel"), Some("api".into()));
    assert_eq!(fields.remove("user_id"), Some(USER.to_string().into()));
    assert_eq!(current, kept);
    // Once decoded it is written back as v3 only: nothing downstream sees v1.
    let event = Event::OrderPlaced(event);
    assert_eq!(event.message_type(), ORDER_PLACED_V3);
    let json: serde_json::Value = serde_json::from_slice(&event.encode()).unwrap();
    assert_eq!(json["channel"], "api");
    assert_eq!(json["user_id"], USER.to_string());
    assert_eq!(Event::decode(ORDER_PLACED_V3, &event.encode()).unwrap(), event);
}

#[test]
fn v2_carries_its_channel_and_requires_it() {
    for channel in Channel::ALL {
        let mut json: serde_json::Value = serde_json::from_slice(PLACED_V1).unwrap();
        json["channel"] = channel.as_str().into();
        let data = serde_json::to_vec(&json).unwrap();
        let Event::OrderPlaced(event) = Event::decode(ORDER_PLACED_V2, &data).unwrap() else {
            unreachable!()
        };
        assert_eq!(event.channel, channel);
        assert_eq!(Channel::parse("channel", channel.as_str()), Ok(channel));
        assert_eq!(channel.to_string(), channel.as_str());
    }
    // v2 without a channel is not v2; an unknown channel is malformed.
    assert!(matches!(
        Event::decode(ORDER_PLACED_V2, PLACED_V1),
        Err(DecodeError::Malformed { .. })
    ));
    let mut json: serde_json::Value = serde_json::from_slice(PLACED_V1).unwrap();
    json["channel"] = "fax".into();
    assert!(matches!(
        Event::decode(ORDER_PLACED_V2, &serde_json::to_vec(&json).unwrap()),
        Err(DecodeError::Malformed { .. })
    ));
    assert_eq!(Channel::parse("channel", "fax").unwrap_err().field, "channel");
    // A v1 event that happens to hold a `channel` is still a v1 event: placed through the API.
    let Event::OrderPlaced(event) = Event::decode(ORDER_PLACED_V1, &serde_json::to_vec(&json).unwrap()).unwrap() else {
        unreachable!()
    };
    assert_eq!(event.channel, Channel::Api);
}

#[test]
fn a_v2_order_placed_belongs_to_the_user_of_its_details_or_to_nobody() {
    let mut json: serde_json::Value = serde_json::from_slice(PLACED_V1).unwrap();
    json["channel"] = "web".into();
    let Event::OrderPlaced(event) = Event::decode(ORDER_PLACED_V2, &serde_json::to_vec(&json).unwrap()).unwrap() else {
        unreachable!()
    };
    assert_eq!((event.user_id, event.channel), (Some(USER), Channel::Web));
    json.as_object_mut().unwrap().remove("details");
    let Event::OrderPlaced(event) = Event::decode(ORDER_PLACED_V2, &serde_json::to_vec(&json).unwrap()).unwrap() else {
        unreachable!()
    };
    assert_eq!(event.user_id, None);
    // A v2 event never gains an owner from a stray top-level `user_id`: v2 had none.
    json["user_id"] = OTHER_USER.to_string().into();
    let Event::OrderPlaced(event) = Event::decode(ORDER_PLACED_V2, &serde_json::to_vec(&json).unwrap()).unwrap() else {
        unreachable!()
    };
    assert_eq!(event.user_id, None);
}

#[test]

fn the_channel_of_the_command_is_the_channel_of_the_event_and_defaults_to_api() {
    let plain = place(ID, "Jane");
    let events = Order::decide(&State::NotPlaced, &Command::PlaceOrder(plain.clone())).unwrap();
    assert!(matches!(
        &events[..],
        [Event::OrderPlaced(OrderPlaced {
            channel: Channel::Api,
            ..
        })]
    ));
    let from_mobile = PlaceOrder {
        channel: Some(Channel::Mobile),
        ..plain
    };
    let events = Order::decide(&State::NotPlaced, &Command::PlaceOrder(from_mobile.clone())).unwrap();
    assert!(matches!(
        &events[..],
        [Event::OrderPlaced(OrderPlaced {
            channel: Channel::Mobile,
            ..
        })]
    ));
    // The command stays v1: the channel is optional, omitted when not given, and old commands decode.
    let command = Command::PlaceOrder(from_mobile);
    assert_eq!(command.message_type(), PLACE_ORDER_V1);
    assert_eq!(Command::decode(PLACE_ORDER_V1, &command.encode()).unwrap(), command);
    let json: serde_json::Value = serde_json::from_slice(&Command::PlaceOrder(place(ID, "Jane")).encode()).unwrap();
    assert!(json.get("channel").is_none());
}

#[test]
fn rejections_travel_tagged_and_read_naturally() {
    for (rejection, json, text) in [
        (
            Rejection::StaleVersion { expected: 1, actual: 2 },
            serde_json::json!({"type": "stale_version", "expected": 1, "actual": 2}),
            "order is at version 2, not the expected 1".to_owned(),
        ),
        (
            Rejection::IllegalPaymentTransition {
                order_id: ID,
                payment_status: PaymentStatus::Paid,
                allowed: vec![PaymentStatus::Refunded],
            },
            serde_json::json!({"type": "illegal_payment_transition", "order_id": ID, "payment_status": "paid", "allowed": ["refunded"]}),
            format!("payment of order {ID} is paid; it can only become refunded"),
        ),
        (
            Rejection::Pricing {
                order_id: ID,
                problem: PricingError::NoItems,
            },
            serde_json::json!({"type": "pricing", "order_id": ID, "problem": {"type": "no_items"}}),
            format!("order {ID} cannot be priced: an order needs at least one line item"),
        ),
        (
            Rejection::WrongPurchase {
                order_id: ID,
                purchase_id: OTHER_PURCHASE,
                paid_with: PURCHASE,
            },
            serde_json::json!({"type": "wrong_purchase", "order_id": ID, "purchase_id": OTHER_PURCHASE, "paid_with": PURCHASE}),
            format!("order {ID} was paid by purchase {PURCHASE}, not {OTHER_PURCHASE}"),
        ),
    ] {
        assert_eq!(serde_json::to_value(&rejection).unwrap(), json);
        assert_eq!(serde_json::from_value::<Rejection>(json).unwrap(), rejection);
        assert_eq!(rejection.to_string(), text);
    }
}
