//! The validated fields of purchase messages: the buyer's name, refund reasons and how a purchase
//! is paid.

use crate::text::validated_text;
use crate::validation::bounded_text;
use crate::wire::wire_enum;
use crate::{FieldProblem, InvalidField};

validated_text! {
    /// The purchaser's user name: trimmed, one line of plain text, 1–100 characters.
    Username { field: "username", min: 1, max: 100, rule: bounded_text }
    /// Why a refund is made: trimmed, one line of plain text, 1–500 characters.
    RefundReason { field: "reason", min: 1, max: 500, rule: bounded_text }
}

wire_enum! {
    /// How a purchase is paid. The documented set: `credit_card`, `debit_card`.
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    pub enum PaymentMethod {
        CreditCard = "credit_card",
        DebitCard = "debit_card",
    }
}

impl PaymentMethod {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, InvalidField> {
        Self::from_wire(value).ok_or_else(|| {
            let allowed: Vec<&str> = Self::ALL.map(Self::as_str).to_vec();
            InvalidField::new(
                field,
                FieldProblem::NotInSet {
                    allowed: allowed.join(", "),
                },
            )
        })
    }
}
