//! The pricing policy: what an order's line items cost, in integer minor units, never a float.
//!
//! Every rule is a named function, so a test (or a reader) can point at it:
//!
//! - [`line_amount`]: quantity × unit price of one line.
//! - [`subtotal`]: the sum of the line amounts.
//! - [`tax`]: [`TAX_RATE_PERCENT`] of the subtotal, rounded to the minor unit half to even.
//! - [`shipping`]: a flat [`shipping_fee`] of 9.99 major units, waived from a subtotal of
//!   [`free_shipping_threshold`] (100.00 major units) up.
//! - [`price`]: all of the above, and `total = subtotal + tax + shipping`.
//!
//! Rounding is [`round_half_even`] (banker's rounding) on exact integer ratios. With an 8 % rate
//! an exact tie cannot actually occur (`8 × subtotal` would have to end in `50`, but it is a
//! multiple of 4 and 50 is not, modulo 100), so the tie rule only matters if the rate changes;
//! it is tested on the rounding function itself.
//!
//! The policy is stated in major units and converted to each currency's minor unit, so it holds
//! for every supported currency: the shipping fee is 999 cents in USD, 9 990 fils in KWD, and
//! 10 yen in JPY (9.99 rounded half to even to a whole yen); free shipping starts at 10 000 cents,
//! 100 000 fils or 100 yen.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::count::unit_count;
use crate::money::{Currency, Money};
use crate::schema::fixed_schema;
use crate::text::validated_text;
use crate::validation::bounded_text;
use crate::{FieldProblem, InvalidField};

/// The sales tax rate, in percent of the subtotal.
pub const TAX_RATE_PERCENT: u32 = 8;

/// The flat shipping fee in hundredths of the currency's major unit: 9.99.
pub const SHIPPING_FEE_HUNDREDTHS: u32 = 999;

/// The subtotal from which shipping is free, in major units of the order's currency: 100.00.
pub const FREE_SHIPPING_THRESHOLD_MAJOR: u32 = 100;

/// A stock-keeping unit: 1–64 characters, each an ASCII letter, digit, `.`, `_` or `-`.
///
/// Kept exactly as written: ` ABC-1` (with a space) and `abc-1` are not repaired into `ABC-1`,
/// so one item has one spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

impl Sku {
    pub const MAX_CHARS: usize = 64;
    /// What a SKU may contain, as the client is told.
    pub const ALLOWED: &'static str = "letters, digits, '.', '_' and '-'";

    pub fn parse(value: &str) -> Result<Self, InvalidField> {
        let invalid = |problem| InvalidField::new("sku", problem);
        if value.is_empty() {
            return Err(invalid(FieldProblem::Blank));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(invalid(FieldProblem::InvalidCharacters { allowed: Self::ALLOWED }));
        }
        // All ASCII from here, so bytes are characters.
        if value.len() > Self::MAX_CHARS {
            return Err(invalid(FieldProblem::TooLong {
                max: Self::MAX_CHARS,
                actual: value.len(),
            }));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sku {
    type Error = InvalidField;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Sku> for String {
    fn from(value: Sku) -> Self {
        value.0
    }
}

fixed_schema!(Sku, {
    "type": "string",
    "minLength": 1,
    "maxLength": Self::MAX_CHARS,
    "pattern": "^[A-Za-z0-9._-]+$",
});

validated_text!(
    /// What a line item is called on the order: trimmed, one line of plain text, 1–200 characters.
    ItemName { field: "name", min: 1, max: 200, rule: bounded_text }
);

unit_count! {
    /// How many of an item are ordered: 1 to 1,000.
    Quantity { min: 1, max: 1_000 }
}

/// One line of an order: `quantity` of `sku` at `unit_price` each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LineItem {
    pub sku: Sku,
    pub name: ItemName,
    pub quantity: Quantity,
    /// The price of one unit, in the order's currency. Zero is allowed (a free item).
    pub unit_price: Money,
}

/// What an order costs, every amount in the order's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Totals {
    pub subtotal: Money,
    pub tax: Money,
    pub shipping: Money,
    /// `subtotal + tax + shipping`.
    pub total: Money,
}

/// Why a list of line items could not be priced. `index` is the item's position in `items`,
/// counted from 0 as in the request body.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PricingError {
    #[error("an order needs at least one line item")]
    NoItems,
    #[error("item {index} ({}) is priced in {found}, not in the order's currency {expected}", .sku.as_str())]
    CurrencyMismatch {
        index: usize,
        sku: Sku,
        expected: Currency,
        found: Currency,
    },
    #[error("item {index} ({}): quantity × unit price is too large to hold", .sku.as_str())]
    LineAmountOverflow { index: usize, sku: Sku },
    #[error("the subtotal is too large to hold")]
    SubtotalOverflow,
    #[error("the total is too large to hold")]
    TotalOverflow,
}

/// `numerator / denominator` rounded to the nearest integer, an exact tie going to the even
/// neighbour: 2.5 → 2, 3.5 → 4, −2.5 → −2, 80.48 → 80, 81.52 → 82.
pub fn round_half_even(numerator: i128, denominator: NonZeroU32) -> i128 {
    let denominator = i128::from(denominator.get());
    let quotient = numerator.div_euclid(denominator);
    // 0 <= remainder < denominator, so neither side below can overflow.
    let remainder = numerator.rem_euclid(denominator);
    let rest = denominator - remainder;
    let round_up = remainder > rest || (remainder == rest && quotient % 2 != 0);
    // quotient < i128::MAX whenever it is rounded up: that needs remainder > 0, so denominator > 1.
    quotient + i128::from(round_up)
}

const HUNDRED: NonZeroU32 = match NonZeroU32::new(100) {
    Some(hundred) => hundred,
    None => unreachable!(),
};

/// How many minor units make one major unit of `currency`: 100 for USD, 1 for JPY.
fn minor_per_major(currency: Currency) -> i128 {
    10_i128.pow(u32::from(currency.minor_unit()))
}

/// Money of a count already known to be within `0..=i64::MAX`.
fn known_amount(minor: i128, currency: Currency) -> Money {
    i64::try_from(minor.max(0))
        .ok()
        .and_then(|minor| Money::from_minor(minor, currency).ok())
        .unwrap_or(Money::zero(currency))
}

/// Quantity × unit price of one line; `None` if it does not fit in an amount.
pub fn line_amount(item: &LineItem) -> Option<Money> {
    let minor = item.unit_price.minor().checked_mul(i64::from(item.quantity.get()))?;
    Money::from_minor(minor, item.unit_price.currency()).ok()
}

/// Σ quantity × unit price over `items`, all of which must be priced in `currency`. An empty
/// list is refused: an order has at least one line.
pub fn subtotal(items: &[LineItem], currency: Currency) -> Result<Money, PricingError> {
    if items.is_empty() {
        return Err(PricingError::NoItems);
    }
    items
        .iter()
        .enumerate()
        .try_fold(Money::zero(currency), |sum, (index, item)| {
            let found = item.unit_price.currency();
            if found != currency {
                return Err(PricingError::CurrencyMismatch {
                    index,
                    sku: item.sku.clone(),
                    expected: currency,
                    found,
                });
            }
            let line = line_amount(item).ok_or_else(|| PricingError::LineAmountOverflow {
                index,
                sku: item.sku.clone(),
            })?;
            sum.checked_add(line).ok_or(PricingError::SubtotalOverflow)
        })
}

/// [`TAX_RATE_PERCENT`] of `subtotal`, rounded half to even to the minor unit:
/// 10.06 → 0.8048 → 0.80; 10.19 → 0.8152 → 0.82; 29.68 → 2.3744 → 2.37.
pub fn tax(subtotal: Money) -> Money {
    // i64 × 8 fits comfortably in an i128, and the result is below the subtotal.
    let exact = i128::from(subtotal.minor()) * i128::from(TAX_RATE_PERCENT);
    known_amount(round_half_even(exact, HUNDRED), subtotal.currency())
}

/// The flat shipping fee in `currency`: 9.99 major units, rounded half to even to the minor
/// unit (999 cents, 9990 fils, 10 yen).
pub fn shipping_fee(currency: Currency) -> Money {
    let exact = i128::from(SHIPPING_FEE_HUNDREDTHS) * minor_per_major(currency);
    known_amount(round_half_even(exact, HUNDRED), currency)
}

/// The subtotal from which shipping is free: 100 major units of `currency`.
pub fn free_shipping_threshold(currency: Currency) -> Money {
    known_amount(
        i128::from(FREE_SHIPPING_THRESHOLD_MAJOR) * minor_per_major(currency),
        currency,
    )
}

/// Shipping for an order of `subtotal`: nothing from the [`free_shipping_threshold`] up (100.00
/// itself ships free), the [`shipping_fee`] below it.
pub fn shipping(subtotal: Money) -> Money {
    let currency = subtotal.currency();
    if subtotal.minor() >= free_shipping_threshold(currency).minor() {
        Money::zero(currency)
    } else {
        shipping_fee(currency)
    }
}

/// Prices `items` in `currency`: subtotal, tax, shipping and `total = subtotal + tax + shipping`.
pub fn price(items: &[LineItem], currency: Currency) -> Result<Totals, PricingError> {
    let subtotal = subtotal(items, currency)?;
    let tax = tax(subtotal);
    let shipping = shipping(subtotal);
    let total = subtotal
        .checked_add(tax)
        .and_then(|sum| sum.checked_add(shipping))
        .ok_or(PricingError::TotalOverflow)?;
    Ok(Totals {
        subtotal,
        tax,
        shipping,
        total,
    })
}

#[cfg(test)]
mod tests;
