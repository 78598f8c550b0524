//! Older versions of events, and the one place they become the current shape.
//!
//! Decoding ([`Message::decode`](crate::Message::decode) of [`Event`](super::Event)) sends every
//! superseded version through here, so nothing downstream of `domain` ever sees one. To evolve an
//! event: freeze its current struct here under a versioned name (keeping its doc and fields
//! exactly, so its checked-in schema stays byte-identical), change the current struct, give it a
//! new type name, and add an upcast below plus a `superseded` line to the event table.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Channel, OrderName, OrderNote, OrderPlaced, PricedOrderDetails};
use crate::message::payloads;

payloads! {
    // `orderstream.order.placed.v2`, frozen: the shape of `OrderPlaced` before `user_id`. Its
    // doc comment is its schema's description and must not change.
    /// An order was placed. `placed_at` is the event time read models use, `channel` where it was
    /// placed. Written as `orderstream.order.placed.v2`; a v1 event (without `channel`) decodes to
    /// this shape with `channel: api` (see `upcast`).
    #[cfg_attr(feature = "schema", schemars(rename = "OrderPlaced"))]
    pub struct OrderPlacedV2 {
        order_id: Uuid,
        name: OrderName,
        note: Option<OrderNote>,
        placed_at: DateTime<Utc>,
        /// The items and their totals, when the order was placed with items.
        details: Option<PricedOrderDetails>,
        /// Where the order was placed.
        channel: Channel,
    }
}

/// `orderstream.order.placed.v2` → current: the owner was the user of the details, and an
/// order placed without one belongs to nobody.
pub fn order_placed_v2(v2: OrderPlacedV2) -> OrderPlaced {
    OrderPlaced {
        user_id: v2.details.as_ref().and_then(|details| details.user_id),
        order_id: v2.order_id,
        name: v2.name,
        note: v2.note,
        placed_at: v2.placed_at,
        details: v2.details,
        channel: v2.channel,
        catalog_items: None,
    }
}

payloads! {
    // `orderstream.order.placed.v1`, frozen: the shape of `OrderPlaced` before `channel`. Its
    // doc comment is its schema's description and must not change.
    /// An order was placed. `placed_at` is the event time read models use.
    #[cfg_attr(feature = "schema", schemars(rename = "OrderPlaced"))]
    pub struct OrderPlacedV1 {
        order_id: Uuid,
        name: OrderName,
        note: Option<OrderNote>,
        placed_at: DateTime<Utc>,
        /// The items and their totals, when the order was placed with items.
        details: Option<PricedOrderDetails>,
    }
}

/// `orderstream.order.placed.v1` → current: every order placed before channels existed was
/// placed through the API, and belongs to the user of its details, if any.
pub fn order_placed_v1(v1: OrderPlacedV1) -> OrderPlaced {
    order_placed_v2(OrderPlacedV2 {
        order_id: v1.order_id,
        name: v1.name,
        note: v1.note,
        placed_at: v1.placed_at,
        details: v1.details,
        channel: Channel::Api,
    })
}
