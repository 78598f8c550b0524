//! The sandbox gateway: no network, behaving like the well-known test cards.
//!
//! | card number | charge |
//! |---|---|
//! | 4242 4242 4242 4242 (and any other valid number) | authorized |
//! | 4000 0000 0000 0002 | declined, `card_declined` |
//! | 4000 0000 0000 9995 | declined, `insufficient_funds` |
//!
//! The behaviour travels inside the token (as the well-known test tokens do), so a charge needs
//! no card data and gives the same answer after a restart.
//!
//! Every refund is paid back. Refunds are remembered by id for the life of the process: the same
//! refund asked again gets the same reference, and an id reused for another refund is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use futures::FutureExt;
use uuid::Uuid;

use super::{CardDetails, Charge, ChargeOutcome, GatewayError, PaymentGateway, Refund, Refunded};

const PREFIX: &str = "tok_sandbox_";

#[derive(Debug, Clone, Default)]
pub struct SandboxGateway {
    /// Every refund paid back, by refund id: what it paid back and its reference.
    refunds: Arc<Mutex<HashMap<Uuid, (Refund, Refunded)>>>,
}

impl SandboxGateway {
    /// How many distinct refunds have been paid back.
    pub fn refunds_paid(&self) -> usize {
        self.refunds.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

fn behaviour(card_digits: &str) -> &'static str {
    match card_digits {
        "4000000000000002" => "card_declined",
        "4000000000009995" => "insufficient_funds",
        _ => "approve",
    }
}

impl PaymentGateway for SandboxGateway {
    fn tokenize<'a>(&'a self, card: CardDetails<'a>) -> BoxFuture<'a, Result<String, GatewayError>> {
        let token = format!(
            "{PREFIX}{}_{}",
            behaviour(card.number.digits()),
            Uuid::new_v4().simple()
        );
        async move { Ok(token) }.boxed()
    }

    fn charge<'a>(&'a self, charge: &'a Charge) -> BoxFuture<'a, Result<ChargeOutcome, GatewayError>> {
        async move {
            let behaviour = charge
                .payment_token
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.rsplit_once('_'))
                .map(|(behaviour, _)| behaviour)
                .ok_or_else(|| GatewayError::Refused("not a sandbox token".to_owned()))?;
            Ok(match behaviour {
                "approve" => ChargeOutcome::Authorized {
                    authorization_id: format!("auth_sandbox_{}", charge.idempotency_key.simple()),
                },
                reason => ChargeOutcome::Declined {
                    reason: reason.to_owned(),
                },
            })
        }
        .boxed()
    }

    fn refund<'a>(&'a self, refund: &'a Refund) -> BoxFuture<'a, Result<Refunded, GatewayError>> {
        let mut refunds = self.refunds.lock().unwrap_or_else(PoisonError::into_inner);
        let answer = match refunds.get(&refund.refund_id) {
            Some((first, refunded)) if first.charge_key == refund.charge_key && first.amount == refund.amount => {
                Ok(refunded.clone())
            }
            Some(_) => Err(GatewayError::Refused(format!(
                "refund {} was first asked for another charge or amount",
                refund.refund_id
            ))),
            None => {
                let refunded = Refunded {
                    reference: format!("re_sandbox_{}", refund.refund_id.simple()),
                };
                refunds.insert(refund.refund_id, (refund.clone(), refunded.clone()));
                Ok(refunded)
            }
        };
        async move { answer }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::card::{CardCvc, CardExpiry, CardNumber};
    use domain::money::{Currency, Money};

    async fn charge_card(number: &str) -> ChargeOutcome {
        let gateway = SandboxGateway::default();
        let number = CardNumber::parse("card_number", number).unwrap();
        let cvc = CardCvc::parse("card_cvc", "123").unwrap();
        let card = CardDetails {
            number: &number,
            expiry: CardExpiry::parse("card_expiry", "12/30").unwrap(),
            cvc: &cvc,
            holder_name: "John Doe",
        };
        let token = gateway.tokenize(card).await.unwrap();
        assert!(!token.contains(number.digits()), "the token must not carry the number");
        let charge = Charge {
            payment_token: token,
            amount: Money::from_minor(10050, Currency::parse("currency", "USD").unwrap()).unwrap(),
            idempotency_key: Uuid::from_u128(7),
        };
        gateway.charge(&charge).await.unwrap()
    }

    #[tokio::test]
    async fn test_cards_behave_as_documented() {
        assert!(matches!(
            charge_card("4242 4242 4242 4242").await,
            ChargeOutcome::Authorized { .. }
        ));
        assert_eq!(
            charge_card("4000 0000 0000 0002").await,
            ChargeOutcome::Declined {
                reason: "card_declined".to_owned()
            }
        );
        assert_eq!(
            charge_card("4000000000009995").await,
            ChargeOutcome::Declined {
                reason: "insufficient_funds".to_owned()
            }
        );
    }

    #[tokio::test]
    async fn a_repeated_charge_gets_the_same_authorization() {
        assert_eq!(
            charge_card("4242424242424242").await,
            charge_card("4242424242424242").await
        );
    }

    #[tokio::test]
    async fn a_refund_is_paid_back_once_by_its_id() {
        let gateway = SandboxGateway::default();
        let usd = |minor| Money::from_minor(minor, Currency::parse("currency", "USD").unwrap()).unwrap();
        let refund = Refund {
            refund_id: Uuid::from_u128(1),
            charge_key: Uuid::from_u128(7),
            amount: usd(4000),
        };
        let first = gateway.refund(&refund).await.unwrap();
        assert_eq!(
            gateway.refund(&refund).await.unwrap(),
            first,
            "asked again, the same answer"
        );
        assert_eq!(gateway.refunds_paid(), 1);
        let reused = Refund {
            amount: usd(1),
            ..refund.clone()
        };
        assert!(matches!(gateway.refund(&reused).await, Err(GatewayError::Refused(_))));
        let other = Refund {
            refund_id: Uuid::from_u128(2),
            ..refund
        };
        assert_ne!(gateway.refund(&other).await.unwrap(), first);
        assert_eq!(gateway.refunds_paid(), 2);
    }
}
