//! What a purchase's history adds up to, and how each fact changes it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Event;
use crate::money::Money;
use crate::wire::wire_enum;

wire_enum! {
    /// Where a purchase stands.
    pub enum PurchaseStatus {
        Requested = "requested",
        Authorized = "authorized",
        Declined = "declined",
        /// Authorized, then refunded in part or in whole.
        Refunded = "refunded",
    }
}

/// Serialisable so the decider can keep it in its local store and changelog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

pub(super) fn evolve(state: State, event: &Event) -> State {
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
