//! What a purchase's history adds up to, and how each fact changes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Event, RefundReason};
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
        /// Refunds requested and not yet paid back by the gateway, by refund id: their amounts are
        /// no longer refundable. Left out when empty, so a state without one is stored as before.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pending: BTreeMap<Uuid, PendingRefund>,
    },
    Declined,
}

/// A refund accepted and not yet paid back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRefund {
    pub amount: Money,
    pub reason: RefundReason,
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
            pending: BTreeMap::new(),
        },
        (_, Event::PurchaseDeclined(_)) => State::Declined,
        (
            State::Authorized {
                amount,
                refunded,
                order_id,
                mut pending,
            },
            Event::PurchaseRefundRequested(requested),
        ) => {
            pending.insert(
                requested.refund_id,
                PendingRefund {
                    amount: requested.amount,
                    reason: requested.reason.clone(),
                },
            );
            State::Authorized {
                amount,
                refunded,
                order_id,
                pending,
            }
        }
        // A refund of a log written before refunds went through the gateway has no request: it
        // only adds up, as it always did.
        (
            State::Authorized {
                amount,
                refunded,
                order_id,
                mut pending,
            },
            Event::PurchaseRefunded(refund),
        ) => {
            pending.remove(&refund.refund_id);
            State::Authorized {
                amount,
                refunded: refunded.checked_add(refund.amount).unwrap_or(refunded),
                order_id,
                pending,
            }
        }
        // A fact that does not fit the state cannot have been decided here; keep the state.
        (state, _) => state,
    }
}
