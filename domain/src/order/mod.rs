//! The order aggregate: an order is placed once under a customer's name, optionally with line
//! items that are priced when it is placed, then moves through its lifecycle while its payment is
//! recorded beside it.
//!
//! Lifecycle ([`OrderStatus`]): `pending → confirmed → processing → shipped → delivered`, and
//! `cancelled` from `pending` or `confirmed` only.
//!
//! Payment ([`PaymentStatus`]): `pending → paid | failed`, `failed → paid | failed` (a retry),
//! `paid → refunded`. A payment is `paid` only when its amount is exactly the order's total; one
//! that is not, or that arrives once the order is cancelled, is a failed payment carrying the
//! amount it took (`amount_mismatch`, `order_cancelled`), for the payment reactor to refund.
//!
//! Every command after [`PlaceOrder`] may carry the version the client last saw
//! (`expected_version`, from `If-Match`); the state counts the events applied, so a command
//! decided on an outdated view is refused with [`Rejection::StaleVersion`].
//!
//! An order belongs to the user it was placed for (`user_id`). A cancel may carry the acting
//! user; when it does, only the owner may cancel, and anyone else is refused with
//! [`Rejection::NotOwner`], checked before anything else that could tell the order exists.
//! Payments follow the same rule: a payment or payment failure names the purchase's buyer
//! (`payer`), and a buyer who is not the owner is refused with [`Rejection::NotOwner`], so one
//! user's purchase cannot settle another user's order.
//!
//! Stock ([`StockStatus`]): an order whose items include catalog items (`catalog_items`) is
//! `pending` until the stock reservation saga records each of them held
//! ([`RecordStockReserved`]; the last one makes it `reserved`), and it cannot start processing
//! before. A shortage of any item ([`RecordStockShortage`]) cancels it with the reason
//! [`OUT_OF_STOCK`]. A cancellation names the items to give back, a shipment the items that leave
//! (`released`, `shipped`). Recording a step that no longer applies changes nothing, so the saga
//! may deliver a step twice. An order without catalog items is `not_tracked`.
//!
//! - `fields`: the validated fields of order messages, the [`Channel`] and the details.
//! - commands ([`Command`]) and events ([`Event`]), each declared once with its type name;
//!   [`upcast`] turns superseded event versions into the current shape.
//! - [`OrderStatus`] and [`PaymentStatus`], the [`State`] and how events evolve it; the rules of
//!   `decide` and the [`Rejection`]s they answer with.

mod command;
mod decide;
mod event;
mod fields;
mod rejection;
mod state;
mod status;
pub mod upcast;

#[cfg(test)]
mod tests;

pub use command::*;
pub use event::*;
pub use fields::*;
pub use rejection::Rejection;
pub use state::{PlacedOrder, State};
pub use status::{Lifecycle, OrderStatus, PaymentStatus, StockStatus};

use crate::decider::decider;

decider!(
    /// The order aggregate.
    Order { decide: decide::decide, evolve: state::evolve }
);
