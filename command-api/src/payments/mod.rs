//! The payment gateway seen from orderstream: card data goes in once, at the edge, and comes
//! back as an opaque token; charges name only the token, refunds only the charge they pay back. Real gateways implement
//! [`PaymentGateway`]; [`sandbox`] is the embedded default for development and tests.

pub mod fingerprint;
pub mod sandbox;

use domain::card::{CardCvc, CardExpiry, CardNumber};
use domain::money::Money;
use futures::future::BoxFuture;
use thiserror::Error;
use uuid::Uuid;

pub use fingerprint::Fingerprinter;
pub use sandbox::SandboxGateway;

/// Everything the gateway needs to vault a card. Lives only for the request.
pub struct CardDetails<'a> {
    pub number: &'a CardNumber,
    pub expiry: CardExpiry,
    pub cvc: &'a CardCvc,
    pub holder_name: &'a str,
}

/// By hand, never derived: a card field added later must not reach a log through `{:?}`. The
/// number and CVC print masked by their own types; the holder's name not at all.
impl std::fmt::Debug for CardDetails<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardDetails")
            .field("number", self.number)
            .field("expiry", &self.expiry)
            .field("cvc", self.cvc)
            .finish_non_exhaustive()
    }
}

/// A charge of a vaulted card; `idempotency_key` makes a repeated charge return the first result.
#[derive(Debug, Clone)]
pub struct Charge {
    pub payment_token: String,
    pub amount: Money,
    pub idempotency_key: Uuid,
}

/// The gateway's verdict on a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Authorized { authorization_id: String },
    Declined { reason: String },
}

/// A refund of part or all of a charge; `refund_id` makes a repeated refund return the first
/// result and pay nothing more.
#[derive(Debug, Clone)]
pub struct Refund {
    pub refund_id: Uuid,
    /// The idempotency key of the charge paid back: the purchase id.
    pub charge_key: Uuid,
    pub amount: Money,
}

/// A refund the gateway has paid back, under its own reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refunded {
    pub reference: String,
}

#[derive(Debug, Error)]
pub enum GatewayError {
    /// Worth retrying: the gateway did not answer or failed on its side.
    #[error("payment gateway unavailable: {0}")]
    Unavailable(String),
    /// Not worth retrying: the token or request is not acceptable to the gateway.
    #[error("payment gateway refused the request: {0}")]
    Refused(String),
}

pub trait PaymentGateway: Send + Sync + std::fmt::Debug {
    /// Vaults a card and returns the token that stands for it from now on.
    fn tokenize<'a>(&'a self, card: CardDetails<'a>) -> BoxFuture<'a, Result<String, GatewayError>>;

    /// Charges a vaulted card.
    fn charge<'a>(&'a self, charge: &'a Charge) -> BoxFuture<'a, Result<ChargeOutcome, GatewayError>>;

    /// Pays back (part of) a charge. Idempotent by `refund_id`: asked again, the gateway answers
    /// as the first time and pays nothing more.
    fn refund<'a>(&'a self, refund: &'a Refund) -> BoxFuture<'a, Result<Refunded, GatewayError>>;
}
