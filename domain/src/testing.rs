//! `given(events).when(command).then(events | rejection)` for aggregate tests, example order
//! events for every crate whose tests decide or fold them, and, for this crate's own tests, a check
//! that a field parser refuses a list of inputs.

use std::fmt::Debug;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::order::{self, OrderStatus, PaymentStatus};
use crate::{Decider, Message};
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

/// The example order's total, 42.04 USD: what it is paid, and refunded on cancelling.
pub const EXAMPLE_ORDER_TOTAL_MINOR: i64 = 4204;

/// Example events of one order after it is placed, each with the same example values: carrier UPS
/// with one tracking number, cancelled because "changed my mind", a payment of
/// [`EXAMPLE_ORDER_TOTAL_MINOR`] USD that fails as `card_declined`. Each is read from the form the
/// log carries, so one set of fields serves every event type, which takes only its own.
#[derive(Debug, Clone, Copy)]
pub struct OrderEvents {
    pub order_id: Uuid,
    /// The purchase that pays, fails to pay, is refunded, or is to be refunded on cancelling.
    pub purchase_id: Uuid,
}

impl OrderEvents {
    /// The event moving the order to `status` at `at`; a cancellation asks for no refund.
    #[track_caller]
    pub fn moved(self, status: OrderStatus, at: DateTime<Utc>) -> order::Event {
        let (message_type, fields) = match status {
            OrderStatus::Pending => panic!("an order is pending once placed: no event moves it there"),
            OrderStatus::Confirmed => (order::ORDER_CONFIRMED_V1, json!({"confirmed_at": at})),
            OrderStatus::Processing => (order::ORDER_PROCESSING_STARTED_V1, json!({"started_at": at})),
            OrderStatus::Shipped => (
                order::ORDER_SHIPPED_V1,
                json!({"shipped_at": at, "carrier": "UPS", "tracking_number": "1Z999AA10123456784"}),
            ),
            OrderStatus::Delivered => (order::ORDER_DELIVERED_V1, json!({"delivered_at": at})),
            OrderStatus::Cancelled => (
                order::ORDER_CANCELLED_V1,
                json!({"cancelled_at": at, "reason": CANCEL_REASON}),
            ),
        };
        self.decoded(message_type, fields)
    }

    /// The cancellation at `at` that asks to refund the purchase, which paid the whole total.
    pub fn cancelled_refunding(self, at: DateTime<Utc>) -> order::Event {
        let refund = json!({
            "cancelled_at": at,
            "reason": CANCEL_REASON,
            "refund_requested_for": self.purchase_id,
            "refund_amount": total(),
        });
        self.decoded(order::ORDER_CANCELLED_V1, refund)
    }

    /// The purchase's payment reaching `status` at `at`.
    #[track_caller]
    pub fn settled(self, status: PaymentStatus, at: DateTime<Utc>) -> order::Event {
        let (message_type, fields) = match status {
            PaymentStatus::Pending => panic!("a payment is pending until it is settled: no event makes it so"),
            PaymentStatus::Paid => (order::ORDER_PAID_V1, json!({"paid_at": at, "amount": total()})),
            PaymentStatus::Failed => (
                order::ORDER_PAYMENT_FAILED_V1,
                json!({"failed_at": at, "reason": "card_declined"}),
            ),
            PaymentStatus::Refunded => (order::ORDER_REFUNDED_V1, json!({"refunded_at": at})),
        };
        self.decoded(message_type, fields)
    }

    /// `fields` with the ids every event type takes what it needs of, decoded as `message_type`.
    #[track_caller]
    fn decoded(self, message_type: &str, mut fields: Value) -> order::Event {
        fields["order_id"] = json!(self.order_id);
        fields["purchase_id"] = json!(self.purchase_id);
        order::Event::decode(message_type, fields.to_string().as_bytes())
            .unwrap_or_else(|err| panic!("{message_type} from {fields}: {err}"))
    }
}

const CANCEL_REASON: &str = "changed my mind";

fn total() -> Value {
    json!({"minor": EXAMPLE_ORDER_TOTAL_MINOR, "currency": "USD"})
}
