//! The validated fields of product messages, and the id a SKU's product goes by.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::count::unit_count;
use crate::pricing::Sku;
use crate::schema::fixed_schema;
use crate::text::{at_most_text, validated_text};
use crate::validation::bounded_text;
use crate::{FieldProblem, InvalidField};

/// Names the product of each SKU: `product_id = uuid_v5(PRODUCT_NAMESPACE, sku)`.
const PRODUCT_NAMESPACE: Uuid = Uuid::from_u128(0x7072_6f64_7563_742d_6964_2d6e_616d_6531);

/// The id of the product sold under `sku`: the aggregate id of every command about it.
pub fn product_id(sku: &Sku) -> Uuid {
    Uuid::new_v5(&PRODUCT_NAMESPACE, sku.as_str().as_bytes())
}

validated_text! {
    /// What a product is called in the catalog: trimmed, one line of plain text, 1–200 characters.
    ProductName { field: "name", min: 1, max: 200, rule: bounded_text }
    /// A product's description: plain text over any number of lines, at most 2,000 characters,
    /// kept as written.
    ProductDescription { field: "description", min: 0, max: 2_000, rule: at_most_text }
    /// Why stock on hand was corrected, e.g. `damaged in storage`: trimmed, one line of plain text,
    /// 1–500 characters.
    AdjustmentReason { field: "reason", min: 1, max: 500, rule: bounded_text }
}

unit_count! {
    /// A number of units received, reserved, released or shipped: 1 to 1,000,000.
    StockQuantity { min: 1, max: 1_000_000 }
}

/// A correction of stock on hand: a count of units added (positive) or taken away (negative), never
/// zero, at most 1,000,000 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i32")]
pub struct StockDelta(i32);

impl StockDelta {
    pub const MAX: i32 = 1_000_000;

    /// Checks `value` is non-zero and within `-MAX..=MAX`, naming the field `quantity`.
    pub fn new(value: i64) -> Result<Self, InvalidField> {
        let invalid = |problem| InvalidField::new("quantity", problem);
        if value == 0 {
            return Err(invalid(FieldProblem::Format {
                expected: "a non-zero number of units (negative takes stock away)",
            }));
        }
        i32::try_from(value)
            .ok()
            .filter(|value| (-Self::MAX..=Self::MAX).contains(value))
            .map(Self)
            .ok_or(invalid(FieldProblem::OutOfRange {
                min: -i64::from(Self::MAX),
                max: i64::from(Self::MAX),
            }))
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

impl TryFrom<i64> for StockDelta {
    type Error = InvalidField;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<StockDelta> for i32 {
    fn from(value: StockDelta) -> Self {
        value.0
    }
}

fixed_schema!(StockDelta, {
    "type": "integer",
    "minimum": -Self::MAX,
    "maximum": Self::MAX,
    "not": { "const": 0 },
});

/// One catalog item of an order: `quantity` units of `sku`, all the order's lines of that SKU
/// together. What the stock reservation saga reserves, releases or ships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StockLine {
    pub sku: Sku,
    pub quantity: StockQuantity,
}
