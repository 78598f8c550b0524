//! The purchase aggregate: a card payment requested, then authorized or declined by the payment
//! gateway, and refunded in whole or in parts once authorized.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::card::MaskedCard;
use crate::message::{parse, to_json, DecodeError, Message};
use crate::money::{Decimal, Money};
use crate::text::validated_text;
use crate::validation::bounded_text;
use crate::{Decider, FieldProblem, InvalidField};

pub const REQUEST_PURCHASE_V1: &str = "orderstream.purchase.request.v1";
pub const RECORD_AUTHORIZATION_V1: &str = "orderstream.purchase.record-authorization.v1";
pub const RECORD_DECLINE_V1: &str = "orderstream.purchase.record-decline.v1";
pub const REFUND_PURCHASE_V1: &str = "orderstream.purchase.refund.v1";

pub const PURCHASE_REQUESTED_V1: &str = "orderstream.purchase.requested.v1";
/// Type name of [`PurchaseAuthorized`], the version that names the buyer.
pub const PURCHASE_AUTHORIZED_V2: &str = "orderstream.purchase.authorized.v2";
/// Type name of the first version of [`PurchaseAuthorized`], written before it named the buyer.
/// Decoded only: [`upcast::purchase_authorized_v1`] turns it into the current shape.
pub const PURCHASE_AUTHORIZED_V1: &str = "orderstream.purchase.authorized.v1";
/// Type name of [`PurchaseDeclined`], the version that names the buyer.
pub const PURCHASE_DECLINED_V2: &str = "orderstream.purchase.declined.v2";
/// Type name of the first version of [`PurchaseDeclined`], written before it named the buyer.
/// Decoded only: [`upcast::purchase_declined_v1`] turns it into the current shape.
pub const PURCHASE_DECLINED_V1: &str = "orderstream.purchase.declined.v1";
pub const PURCHASE_REFUNDED_V1: &str = "orderstream.purchase.refunded.v1";

validated_text!(
    /// The purchaser's user name: trimmed, one line of plain text, 1–100 characters.
    Username { field: "username", min: 1, max: 100, rule: bounded_text }
);

validated_text!(
    /// Why a refund is made: trimmed, one line of plain text, 1–500 characters.
    RefundReason { field: "reason", min: 1, max: 500, rule: bounded_text }
);

/// How a purchase is paid. The documented set: `credit_card`, `debit_card`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum PaymentMethod {
    CreditCard,
    DebitCard,
}

impl PaymentMethod {
    pub const ALL: [PaymentMethod; 2] = [PaymentMethod::CreditCard, PaymentMethod::DebitCard];

    pub fn parse(field: &'static str, value: &str) -> Result<Self, InvalidField> {
        Self::ALL.into_iter().find(|m| m.as_str() == value).ok_or_else(|| {
            let allowed: Vec<&str> = Self::ALL.iter().map(|m| m.as_str()).collect();
            InvalidField::new(
                field,
                FieldProblem::NotInSet {
                    allowed: allowed.join(", "),
                },
            )
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreditCard => "credit_card",
            Self::DebitCard => "debit_card",
        }
    }
}

/// Request a card payment. The edge has already replaced the card by its masked form and a
/// gateway token; the full number and the CVC never get this far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RequestPurchase {
    pub purchase_id: Uuid,
    pub user_id: Uuid,
    pub username: Username,
    pub amount: Money,
    pub payment_method: PaymentMethod,
    pub card: MaskedCard,
    pub payment_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    pub transaction_date: DateTime<Utc>,
    pub requested_at: DateTime<Utc>,
}

/// Record that the gateway authorized the charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecordAuthorization {
    pub purchase_id: Uuid,
    pub authorization_id: String,
    pub authorized_at: DateTime<Utc>,
}

/// Record that the gateway declined the charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecordDecline {
    pub purchase_id: Uuid,
    pub reason: String,
    pub declined_at: DateTime<Utc>,
}

/// Refund part or all of an authorized purchase. The amount is the client's decimal, read in the
/// purchase's currency when decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RefundPurchase {
    pub purchase_id: Uuid,
    pub refund_id: Uuid,
    pub amount: Decimal,
    pub reason: RefundReason,
    pub requested_at: DateTime<Utc>,
}

/// A card payment was requested; the payment reactor charges it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PurchaseRequested {
    pub purchase_id: Uuid,
    pub user_id: Uuid,
    pub username: Username,
    pub amount: Money,
    pub payment_method: PaymentMethod,
    pub card: MaskedCard,
    pub payment_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    pub transaction_date: DateTime<Utc>,
    pub requested_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PurchaseAuthorized {
    pub purchase_id: Uuid,
    pub authorization_id: String,
    pub authorized_at: DateTime<Utc>,
    /// The order this purchase pays, copied from the request so order reactors need nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    /// The authorized amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    /// The buyer, copied from the request so the order it pays can check it is the owner's.
    /// Absent only in purchases authorized before events named their buyer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PurchaseDeclined {
    pub purchase_id: Uuid,
    pub reason: String,
    pub declined_at: DateTime<Utc>,
    /// The order this purchase pays, copied from the request so order reactors need nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    /// The buyer, copied from the request so the order it would have paid can check it is the
    /// owner's. Absent only in purchases declined before events named their buyer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
}

/// Older versions of events, and the one place they become the current shape (see
/// `order::upcast`, which evolves the same way).
pub mod upcast {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Serialize};
    use uuid::Uuid;

    use super::{PurchaseAuthorized, PurchaseDeclined};
    use crate::money::Money;

    // `orderstream.purchase.authorized.v1`, frozen: the shape of `PurchaseAuthorized` before
    // `user_id`. Its fields' doc comments are its schema's descriptions and must not change.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[cfg_attr(feature = "schema", schemars(rename = "PurchaseAuthorized"))]
    pub struct PurchaseAuthorizedV1 {
        pub purchase_id: Uuid,
        pub authorization_id: String,
        pub authorized_at: DateTime<Utc>,
        /// The order this purchase pays, copied from the request so order reactors need nothing else.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub order_id: Option<Uuid>,
        /// The authorized amount.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub amount: Option<Money>,
    }

    /// `orderstream.purchase.authorized.v1` → current: the buyer was not recorded, so it is
    /// unknown, and an order it pays cannot check it.
    pub fn purchase_authorized_v1(v1: PurchaseAuthorizedV1) -> PurchaseAuthorized {
        PurchaseAuthorized {
            purchase_id: v1.purchase_id,
            authorization_id: v1.authorization_id,
            authorized_at: v1.authorized_at,
            order_id: v1.order_id,
            amount: v1.amount,
            user_id: None,
        }
    }

    // `orderstream.purchase.declined.v1`, frozen: the shape of `PurchaseDeclined` before
    // `user_id`. Its fields' doc comments are its schema's descriptions and must not change.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[cfg_attr(feature = "schema", schemars(rename = "PurchaseDeclined"))]
    pub struct PurchaseDeclinedV1 {
        pub purchase_id: Uuid,
        pub reason: String,
        pub declined_at: DateTime<Utc>,
        /// The order this purchase pays, copied from the request so order reactors need nothing else.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub order_id: Option<Uuid>,
    }

    /// `orderstream.purchase.declined.v1` → current: the buyer was not recorded, so it is unknown.
    pub fn purchase_declined_v1(v1: PurchaseDeclinedV1) -> PurchaseDeclined {
        PurchaseDeclined {
            purchase_id: v1.purchase_id,
            reason: v1.reason,
            declined_at: v1.declined_at,
            order_id: v1.order_id,
            user_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PurchaseRefunded {
    pub purchase_id: Uuid,
    pub refund_id: Uuid,
    pub amount: Money,
    pub reason: RefundReason,
    pub refunded_at: DateTime<Utc>,
    /// The order this purchase pays, copied from the request so order reactors need nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    RequestPurchase(RequestPurchase),
    RecordAuthorization(RecordAuthorization),
    RecordDecline(RecordDecline),
    RefundPurchase(RefundPurchase),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    PurchaseRequested(PurchaseRequested),
    PurchaseAuthorized(PurchaseAuthorized),
    PurchaseDeclined(PurchaseDeclined),
    PurchaseRefunded(PurchaseRefunded),
}

/// Where a purchase stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseStatus {
    Requested,
    Authorized,
    Declined,
    /// Authorized, then refunded in part or in whole.
    Refunded,
}

impl PurchaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Authorized => "authorized",
            Self::Declined => "declined",
            Self::Refunded => "refunded",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum State {
    #[default]
    NotRequested,
    Requested {
        amount: Money,
        order_id: Option<Uuid>,
        user_id: Uuid,
    },
    Authorized {
        amount: Money,
        refunded: Money,
        order_id: Option<Uuid>,
    },
    Declined,
}

impl State {
    pub fn status(&self) -> Option<PurchaseStatus> {
        match self {
            Self::NotRequested => None,
            Self::Requested { .. } => Some(PurchaseStatus::Requested),
            Self::Authorized { refunded, .. } if refunded.minor() > 0 => Some(PurchaseStatus::Refunded),
            Self::Authorized { .. } => Some(PurchaseStatus::Authorized),
            Self::Declined => Some(PurchaseStatus::Declined),
        }
    }
}

/// Why a purchase command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Rejection {
    #[error("purchase {purchase_id} has already been requested")]
    AlreadyRequested { purchase_id: Uuid },
    #[error("purchase {purchase_id} does not exist")]
    NotFound { purchase_id: Uuid },
    #[error("purchase {purchase_id} is already {status:?}; the gateway's verdict is recorded once")]
    AlreadySettled { purchase_id: Uuid, status: PurchaseStatus },
    #[error("purchase {purchase_id} is {status:?}; only an authorized purchase can be refunded")]
    NotRefundable { purchase_id: Uuid, status: PurchaseStatus },
    #[error("refund of {requested} exceeds the {refundable} still refundable")]
    RefundExceedsRefundable { requested: String, refundable: String },
    #[error("`amount` {problem}")]
    InvalidRefundAmount { problem: String },
}

/// The purchase aggregate.
#[derive(Debug)]
pub struct Purchase;

impl Decider for Purchase {
    type Command = Command;
    type Event = Event;
    type State = State;
    type Rejection = Rejection;

    fn decide(state: &State, command: &Command) -> Result<Vec<Event>, Rejection> {
        let purchase_id = command.purchase_id();
        match (state, command) {
            (State::NotRequested, Command::RequestPurchase(request)) => {
                Ok(vec![Event::PurchaseRequested(PurchaseRequested {
                    purchase_id,
                    user_id: request.user_id,
                    username: request.username.clone(),
                    amount: request.amount,
                    payment_method: request.payment_method,
                    card: request.card.clone(),
                    payment_token: request.payment_token.clone(),
                    order_id: request.order_id,
                    transaction_date: request.transaction_date,
                    requested_at: request.requested_at,
                })])
            }
            (_, Command::RequestPurchase(_)) => Err(Rejection::AlreadyRequested { purchase_id }),
            (State::NotRequested, _) => Err(Rejection::NotFound { purchase_id }),
            (
                State::Requested {
                    amount,
                    order_id,
                    user_id,
                },
                Command::RecordAuthorization(record),
            ) => Ok(vec![Event::PurchaseAuthorized(PurchaseAuthorized {
                purchase_id,
                authorization_id: record.authorization_id.clone(),
                authorized_at: record.authorized_at,
                order_id: *order_id,
                amount: Some(*amount),
                user_id: Some(*user_id),
            })]),
            (State::Requested { order_id, user_id, .. }, Command::RecordDecline(record)) => {
                Ok(vec![Event::PurchaseDeclined(PurchaseDeclined {
                    purchase_id,
                    reason: record.reason.clone(),
                    declined_at: record.declined_at,
                    order_id: *order_id,
                    user_id: Some(*user_id),
                })])
            }
            (settled, Command::RecordAuthorization(_) | Command::RecordDecline(_)) => Err(Rejection::AlreadySettled {
                purchase_id,
                status: settled.status().unwrap_or(PurchaseStatus::Requested),
            }),
            (
                State::Authorized {
                    amount,
                    refunded,
                    order_id,
                },
                Command::RefundPurchase(refund),
            ) => {
                let requested = Money::from_decimal("amount", refund.amount, amount.currency()).map_err(|invalid| {
                    Rejection::InvalidRefundAmount {
                        problem: invalid.problem.to_string(),
                    }
                })?;
                let refundable = amount.checked_sub(*refunded).unwrap_or(*amount);
                if requested.minor() > refundable.minor() {
                    return Err(Rejection::RefundExceedsRefundable {
                        requested: requested.to_decimal_string(),
                        refundable: refundable.to_decimal_string(),
                    });
                }
                Ok(vec![Event::PurchaseRefunded(PurchaseRefunded {
                    purchase_id,
                    refund_id: refund.refund_id,
                    amount: requested,
                    reason: refund.reason.clone(),
                    refunded_at: refund.requested_at,
                    order_id: *order_id,
                })])
            }
            (other, Command::RefundPurchase(_)) => Err(Rejection::NotRefundable {
                purchase_id,
                status: other.status().unwrap_or(PurchaseStatus::Requested),
            }),
        }
    }

    fn evolve(state: State, event: &Event) -> State {
        match (state, event) {
            (_, Event::PurchaseRequested(requested)) => State::Requested {
                amount: requested.amount,
                order_id: requested.order_id,
                user_id: requested.user_id,
            },
            (State::Requested { amount, order_id, .. }, Event::PurchaseAuthorized(_)) => State::Authorized {
                amount,
                refunded: Money::zero(amount.currency()),
                order_id,
            },
            (_, Event::PurchaseDeclined(_)) => State::Declined,
            (
                State::Authorized {
                    amount,
                    refunded,
                    order_id,
                },
                Event::PurchaseRefunded(refund),
            ) => State::Authorized {
                amount,
                refunded: refunded.checked_add(refund.amount).unwrap_or(refunded),
                order_id,
            },
            // A fact that does not fit the state cannot have been decided here; keep the state.
            (state, _) => state,
        }
    }
}

impl Command {
    pub fn purchase_id(&self) -> Uuid {
        match self {
            Self::RequestPurchase(c) => c.purchase_id,
            Self::RecordAuthorization(c) => c.purchase_id,
            Self::RecordDecline(c) => c.purchase_id,
            Self::RefundPurchase(c) => c.purchase_id,
        }
    }
}

impl Message for Command {
    fn message_type(&self) -> &'static str {
        match self {
            Self::RequestPurchase(_) => REQUEST_PURCHASE_V1,
            Self::RecordAuthorization(_) => RECORD_AUTHORIZATION_V1,
            Self::RecordDecline(_) => RECORD_DECLINE_V1,
            Self::RefundPurchase(_) => REFUND_PURCHASE_V1,
        }
    }

    fn aggregate_id(&self) -> Uuid {
        self.purchase_id()
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Self::RequestPurchase(c) => to_json(c),
            Self::RecordAuthorization(c) => to_json(c),
            Self::RecordDecline(c) => to_json(c),
            Self::RefundPurchase(c) => to_json(c),
        }
    }

    fn decode(message_type: &str, data: &[u8]) -> Result<Self, DecodeError> {
        match message_type {
            REQUEST_PURCHASE_V1 => parse(message_type, data).map(Self::RequestPurchase),
            RECORD_AUTHORIZATION_V1 => parse(message_type, data).map(Self::RecordAuthorization),
            RECORD_DECLINE_V1 => parse(message_type, data).map(Self::RecordDecline),
            REFUND_PURCHASE_V1 => parse(message_type, data).map(Self::RefundPurchase),
            other => Err(DecodeError::UnknownType(other.to_owned())),
        }
    }
}

impl Message for Event {
    fn message_type(&self) -> &'static str {
        match self {
            Self::PurchaseRequested(_) => PURCHASE_REQUESTED_V1,
            Self::PurchaseAuthorized(_) => PURCHASE_AUTHORIZED_V2,
            Self::PurchaseDeclined(_) => PURCHASE_DECLINED_V2,
            Self::PurchaseRefunded(_) => PURCHASE_REFUNDED_V1,
        }
    }

    fn aggregate_id(&self) -> Uuid {
        self.purchase_id()
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Self::PurchaseRequested(e) => to_json(e),
            Self::PurchaseAuthorized(e) => to_json(e),
            Self::PurchaseDeclined(e) => to_json(e),
            Self::PurchaseRefunded(e) => to_json(e),
        }
    }

    fn decode(message_type: &str, data: &[u8]) -> Result<Self, DecodeError> {
        match message_type {
            PURCHASE_REQUESTED_V1 => parse(message_type, data).map(Self::PurchaseRequested),
            PURCHASE_AUTHORIZED_V2 => parse(message_type, data).map(Self::PurchaseAuthorized),
            PURCHASE_DECLINED_V2 => parse(message_type, data).map(Self::PurchaseDeclined),
            PURCHASE_REFUNDED_V1 => parse(message_type, data).map(Self::PurchaseRefunded),
            // Superseded versions: upcast here, and only here.
            PURCHASE_AUTHORIZED_V1 => {
                parse(message_type, data).map(|v1| Self::PurchaseAuthorized(upcast::purchase_authorized_v1(v1)))
            }
            PURCHASE_DECLINED_V1 => {
                parse(message_type, data).map(|v1| Self::PurchaseDeclined(upcast::purchase_declined_v1(v1)))
            }
            other => Err(DecodeError::UnknownType(other.to_owned())),
        }
    }
}

impl Event {
    pub fn purchase_id(&self) -> Uuid {
        match self {
            Self::PurchaseRequested(e) => e.purchase_id,
            Self::PurchaseAuthorized(e) => e.purchase_id,
            Self::PurchaseDeclined(e) => e.purchase_id,
            Self::PurchaseRefunded(e) => e.purchase_id,
        }
    }

    /// When the fact happened: the edge's or the reactor's clock at the time.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Self::PurchaseRequested(e) => e.requested_at,
            Self::PurchaseAuthorized(e) => e.authorized_at,
            Self::PurchaseDeclined(e) => e.declined_at,
            Self::PurchaseRefunded(e) => e.refunded_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::{CardExpiry, CardNumber};
    use crate::money::Currency;
    use crate::testing::given;
    use proptest::prelude::*;

    const ID: Uuid = Uuid::from_u128(1);

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::parse("currency", "USD").unwrap()).unwrap()
    }

    fn at(time: &str) -> DateTime<Utc> {
        time.parse().unwrap()
    }

    fn requested(minor: i64) -> Event {
        let number = CardNumber::parse("card_number", "4242424242424242").unwrap();
        Event::PurchaseRequested(PurchaseRequested {
            purchase_id: ID,
            user_id: Uuid::from_u128(2),
            username: Username::parse("first_user").unwrap(),
            amount: usd(minor),
            payment_method: PaymentMethod::CreditCard,
            card: MaskedCard::new(
                &number,
                CardExpiry::parse("card_expiry", "12/30").unwrap(),
                "f".repeat(64),
            ),
            payment_token: "tok_sandbox_approve_1".to_owned(),
            order_id: None,
            transaction_date: at("2025-01-19T15:04:05Z"),
            requested_at: at("2025-01-19T15:04:06Z"),
        })
    }

    fn authorized() -> Event {
        Event::PurchaseAuthorized(PurchaseAuthorized {
            purchase_id: ID,
            authorization_id: "auth_1".to_owned(),
            authorized_at: at("2025-01-19T15:04:07Z"),
            order_id: None,
            amount: Some(usd(10050)),
            user_id: Some(Uuid::from_u128(2)),
        })
    }

    fn refund(amount: &str) -> Command {
        Command::RefundPurchase(RefundPurchase {
            purchase_id: ID,
            refund_id: Uuid::from_u128(3),
            amount: Decimal::parse("amount", amount).unwrap(),
            reason: RefundReason::parse("damaged").unwrap(),
            requested_at: at("2025-01-20T10:00:00Z"),
        })
    }

    fn refunded(minor: i64) -> Event {
        Event::PurchaseRefunded(PurchaseRefunded {
            purchase_id: ID,
            refund_id: Uuid::from_u128(3),
            amount: usd(minor),
            reason: RefundReason::parse("damaged").unwrap(),
            refunded_at: at("2025-01-20T10:00:00Z"),
            order_id: None,
        })
    }

    fn authorize() -> Command {
        Command::RecordAuthorization(RecordAuthorization {
            purchase_id: ID,
            authorization_id: "auth_1".to_owned(),
            authorized_at: at("2025-01-19T15:04:07Z"),
        })
    }

    #[test]
    fn a_requested_purchase_is_authorized_once() {
        given::<Purchase>([requested(10050)])
            .when(authorize())
            .then([authorized()]);
        given::<Purchase>([requested(10050), authorized()])
            .when(authorize())
            .then_rejected(Rejection::AlreadySettled {
                purchase_id: ID,
                status: PurchaseStatus::Authorized,
            });
    }

    #[test]
    fn verdicts_name_the_buyer_and_v1_verdicts_decode_without_one() {
        let declined = Event::PurchaseDeclined(PurchaseDeclined {
            purchase_id: ID,
            reason: "card_declined".to_owned(),
            declined_at: at("2025-01-19T15:04:07Z"),
            order_id: None,
            user_id: Some(Uuid::from_u128(2)),
        });
        given::<Purchase>([requested(10050)])
            .when(Command::RecordDecline(RecordDecline {
                purchase_id: ID,
                reason: "card_declined".to_owned(),
                declined_at: at("2025-01-19T15:04:07Z"),
            }))
            .then([declined.clone()]);
        for event in [authorized(), declined] {
            assert!(event.message_type().ends_with(".v2"));
            assert_eq!(Event::decode(event.message_type(), &event.encode()).unwrap(), event);
        }
        let v1 = br#"{"purchase_id":"00000000-0000-0000-0000-000000000001","authorization_id":"auth_1","authorized_at":"2025-01-19T15:04:07Z","order_id":"00000000-0000-0000-0000-000000000005","amount":{"minor":10050,"currency":"USD"}}"#;
        let Event::PurchaseAuthorized(upcast) = Event::decode(PURCHASE_AUTHORIZED_V1, v1).unwrap() else {
            panic!("not an authorization");
        };
        assert_eq!(
            (upcast.user_id, upcast.order_id, upcast.amount),
            (None, Some(Uuid::from_u128(5)), Some(usd(10050)))
        );
        let v1 = br#"{"purchase_id":"00000000-0000-0000-0000-000000000001","reason":"card_declined","declined_at":"2025-01-19T15:04:07Z"}"#;
        let Event::PurchaseDeclined(upcast) = Event::decode(PURCHASE_DECLINED_V1, v1).unwrap() else {
            panic!("not a decline");
        };
        assert_eq!(upcast.user_id, None);
    }

    #[test]
    fn a_verdict_for_an_unknown_purchase_is_refused() {
        given::<Purchase>([])
            .when(authorize())
            .then_rejected(Rejection::NotFound { purchase_id: ID });
    }

    #[test]
    fn refunds_are_read_in_the_purchase_currency_and_bounded_by_what_is_left() {
        given::<Purchase>([requested(10050), authorized()])
            .when(refund("40"))
            .then([refunded(4000)]);
        given::<Purchase>([requested(10050), authorized(), refunded(4000)])
            .when(refund("60.51"))
            .then_rejected(Rejection::RefundExceedsRefundable {
                requested: "60.51".to_owned(),
                refundable: "60.50".to_owned(),
            });
        given::<Purchase>([requested(10050), authorized()])
            .when(refund("1.005"))
            .then_rejected(Rejection::InvalidRefundAmount {
                problem: "has more decimals than USD allows (2)".to_owned(),
            });
    }

    #[test]
    fn only_an_authorized_purchase_can_be_refunded() {
        given::<Purchase>([requested(10050)])
            .when(refund("1"))
            .then_rejected(Rejection::NotRefundable {
                purchase_id: ID,
                status: PurchaseStatus::Requested,
            });
    }

    #[test]
    fn status_follows_the_facts() {
        assert_eq!(
            Purchase::fold([&requested(100)]).status(),
            Some(PurchaseStatus::Requested)
        );
        assert_eq!(
            Purchase::fold([&requested(100), &authorized()]).status(),
            Some(PurchaseStatus::Authorized)
        );
        assert_eq!(
            Purchase::fold([&requested(100), &authorized(), &refunded(1)]).status(),
            Some(PurchaseStatus::Refunded)
        );
    }

    proptest! {
        #[test]
        fn accepted_refunds_never_add_up_to_more_than_the_amount(
            amount in 1i64..100_000,
            attempts in proptest::collection::vec(1i64..60_000, 1..20),
        ) {
            let mut state = Purchase::fold([&requested(amount), &authorized()]);
            let mut total = 0;
            for minor in attempts {
                let decimal = usd(minor).to_decimal_string();
                if let Ok(events) = Purchase::decide(&state, &refund(&decimal)) {
                    total += minor;
                    state = events.iter().fold(state, Purchase::evolve);
                }
                prop_assert!(total <= amount);
            }
        }
    }
}
