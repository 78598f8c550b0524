//! Every rule a purchase command is decided by, and why one is refused.

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use super::{
    Command, Event, PurchaseAuthorized, PurchaseDeclined, PurchaseRefundRequested, PurchaseRefunded, PurchaseRequested,
    PurchaseStatus, State,
};
use crate::money::Money;

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
    /// A refund under this id is still waiting for the gateway: the same refund asked for again.
    #[error("refund {refund_id} of purchase {purchase_id} has already been requested")]
    RefundAlreadyRequested { purchase_id: Uuid, refund_id: Uuid },
    /// The gateway's refund is recorded only for a refund accepted and not recorded yet.
    #[error("refund {refund_id} of purchase {purchase_id} is not waiting for the gateway")]
    RefundNotRequested { purchase_id: Uuid, refund_id: Uuid },
}

pub(super) fn decide(state: &State, command: &Command) -> Result<Vec<Event>, Rejection> {
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
                pending,
            },
            Command::RefundPurchase(refund),
        ) => {
            let requested = Money::from_decimal("amount", refund.amount, amount.currency()).map_err(|invalid| {
                Rejection::InvalidRefundAmount {
                    problem: invalid.problem.to_string(),
                }
            })?;
            if pending.contains_key(&refund.refund_id) {
                return Err(Rejection::RefundAlreadyRequested {
                    purchase_id,
                    refund_id: refund.refund_id,
                });
            }
            // What is being refunded counts as refunded already, so two refunds decided before
            // either is paid back never add up to more than the amount.
            let reserved = pending.values().map(|p| p.amount.minor()).sum::<i64>();
            let refundable = Money::from_minor(amount.minor() - refunded.minor() - reserved, amount.currency())
                .unwrap_or_else(|_| Money::zero(amount.currency()));
            if requested.minor() > refundable.minor() {
                return Err(Rejection::RefundExceedsRefundable {
                    requested: requested.to_decimal_string(),
                    refundable: refundable.to_decimal_string(),
                });
            }
            Ok(vec![Event::PurchaseRefundRequested(PurchaseRefundRequested {
                purchase_id,
                refund_id: refund.refund_id,
                amount: requested,
                reason: refund.reason.clone(),
                requested_at: refund.requested_at,
                order_id: *order_id,
            })])
        }
        (other, Command::RefundPurchase(_)) => Err(Rejection::NotRefundable {
            purchase_id,
            status: other.status().unwrap_or(PurchaseStatus::Requested),
        }),
        (State::Authorized { order_id, pending, .. }, Command::RecordRefund(record)) => {
            let requested = pending.get(&record.refund_id).ok_or(Rejection::RefundNotRequested {
                purchase_id,
                refund_id: record.refund_id,
            })?;
            Ok(vec![Event::PurchaseRefunded(PurchaseRefunded {
                purchase_id,
                refund_id: record.refund_id,
                amount: requested.amount,
                reason: requested.reason.clone(),
                refunded_at: record.refunded_at,
                order_id: *order_id,
            })])
        }
        (_, Command::RecordRefund(record)) => Err(Rejection::RefundNotRequested {
            purchase_id,
            refund_id: record.refund_id,
        }),
    }
}
