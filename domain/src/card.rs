//! Card data that never leaves the edge in the clear.
//!
//! The edge parses the card number and CVC into [`CardNumber`] and [`CardCvc`], hands their digits
//! to the tokeniser and the fingerprint key, and keeps only a [`MaskedCard`]: brand, last four
//! digits, expiry and fingerprint. The two sensitive types print masked through `{:?}` and have
//! no `Display` or `Serialize`, so they cannot end up in a log line, an event or a response by
//! accident; getting at their digits takes an explicit, documented call.

use std::fmt;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::validation::{FieldProblem, InvalidField};
use crate::wire::wire_enum;

/// A card number (PAN): 12–19 digits passing the Luhn check.
///
/// `Debug` shows only the brand and last four digits (`CardNumber(visa ****4242)`); there is
/// deliberately no `Display` and no `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber {
    digits: String,
    brand: CardBrand,
}

impl CardNumber {
    pub const MIN_DIGITS: usize = 12;
    pub const MAX_DIGITS: usize = 19;

    /// Reads a card number as a person types it: ASCII spaces between groups are dropped
    /// (`4242 4242 4242 4242`); any other separator or character is refused rather than guessed
    /// at. What remains must be 12–19 digits with a valid Luhn check digit, which catches most
    /// typos before any call to a payment network.
    pub fn parse(field: &'static str, text: &str) -> Result<Self, InvalidField> {
        let invalid = |problem| InvalidField::new(field, problem);
        if !text.bytes().all(|byte| byte.is_ascii_digit() || byte == b' ') {
            return Err(invalid(FieldProblem::InvalidCharacters {
                allowed: "digits and spaces",
            }));
        }
        let digits: String = text.chars().filter(|c| *c != ' ').collect();
        if digits.is_empty() {
            return Err(invalid(FieldProblem::Blank));
        }
        if !(Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&digits.len()) {
            return Err(invalid(FieldProblem::DigitCount {
                min: Self::MIN_DIGITS,
                max: Self::MAX_DIGITS,
                actual: digits.len(),
            }));
        }
        if !passes_luhn(&digits) {
            return Err(invalid(FieldProblem::FailsLuhn));
        }
        let brand = CardBrand::of(&digits);
        Ok(Self { digits, brand })
    }

    /// The full number, digits only.
    ///
    /// Only for handing to the tokeniser and computing the fingerprint at the edge. Never store
    /// it, put it in an event or a response, or log it: keep [`MaskedCard`] instead.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// The last four digits, the part that may be shown and stored.
    pub fn last4(&self) -> &str {
        &self.digits[self.digits.len() - 4..]
    }

    pub fn brand(&self) -> CardBrand {
        self.brand
    }
}

/// Masked: brand and last four only, whatever the format flags (`{:#?}` included).
impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({} ****{})", self.brand.as_str(), self.last4())
    }
}

/// Whether the Luhn (mod 10) check holds for `digits`, which must be ASCII digits.
fn passes_luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(position, byte)| {
            let digit = u32::from(byte - b'0');
            match position % 2 {
                0 => digit,
                _ if digit * 2 > 9 => digit * 2 - 9,
                _ => digit * 2,
            }
        })
        .sum();
    // Not `is_multiple_of`: that is newer than the workspace's rust-version (1.85).
    let remainder = sum % 10;
    remainder == 0
}

wire_enum! {
    /// The card network, told from the number's leading digits (its IIN range).
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    pub enum CardBrand {
        Visa = "visa",
        Mastercard = "mastercard",
        Amex = "amex",
        Discover = "discover",
        Jcb = "jcb",
        DinersClub = "diners_club",
        UnionPay = "union_pay",
        /// A valid number from a range not listed here; the payment provider still decides.
        Unknown = "unknown",
    }
}

impl CardBrand {
    /// The brand of a number of at least four ASCII digits. Ranges are checked from the most
    /// specific out, though none of the listed ones overlap.
    fn of(digits: &str) -> Self {
        let prefix = |len: usize| {
            digits
                .bytes()
                .take(len)
                .fold(0_u32, |acc, byte| acc * 10 + u32::from(byte - b'0'))
        };
        let (one, two, three, four) = (prefix(1), prefix(2), prefix(3), prefix(4));
        if one == 4 {
            Self::Visa
        } else if (51..=55).contains(&two) || (2221..=2720).contains(&four) {
            Self::Mastercard
        } else if two == 34 || two == 37 {
            Self::Amex
        } else if four == 6011 || (644..=649).contains(&three) || two == 65 {
            Self::Discover
        } else if (3528..=3589).contains(&four) {
            Self::Jcb
        } else if (300..=305).contains(&three) || two == 36 || two == 38 {
            Self::DinersClub
        } else if two == 62 {
            Self::UnionPay
        } else {
            Self::Unknown
        }
    }
}

/// The month a card expires, as printed on it. Not secret: it may be stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CardExpiry {
    month: u8,
    year: u16,
}

impl CardExpiry {
    /// Reads `MM/YY` exactly as printed on a card (`04/27`): two-digit month 01–12, two-digit
    /// year taken as 20YY. Other layouts (`4/27`, `04/2027`, `04-27`) are refused rather than
    /// guessed at.
    pub fn parse(field: &'static str, text: &str) -> Result<Self, InvalidField> {
        let [m1, m2, b'/', y1, y2] = text.as_bytes() else {
            return Err(InvalidField::new(field, FieldProblem::Format { expected: "MM/YY" }));
        };
        let two_digits = |tens: u8, ones: u8| {
            (tens.is_ascii_digit() && ones.is_ascii_digit()).then(|| (tens - b'0') * 10 + (ones - b'0'))
        };
        let (Some(month), Some(year)) = (two_digits(*m1, *m2), two_digits(*y1, *y2)) else {
            return Err(InvalidField::new(field, FieldProblem::Format { expected: "MM/YY" }));
        };
        if !(1..=12).contains(&month) {
            return Err(InvalidField::new(field, FieldProblem::MonthOutOfRange));
        }
        Ok(Self {
            month,
            year: 2000 + u16::from(year),
        })
    }

    /// 1–12.
    pub fn month(&self) -> u8 {
        self.month
    }

    /// The full year, 2000–2099.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// Whether the card had expired by `date`. A card is good through the last moment of its
    /// expiry month, so `12/25` is valid all of December 2025 and expired from 2026-01-01T00:00Z:
    /// that is, it has expired when its month comes before `date`'s month.
    pub fn is_before_month_of(&self, date: DateTime<Utc>) -> bool {
        (i32::from(self.year), u32::from(self.month)) < (date.year(), date.month())
    }

    /// `self` if the card is still valid at `now`, else [`FieldProblem::Expired`] naming `field`.
    /// `now` comes from the command, as domain reads no clock.
    pub fn ensure_valid_at(self, field: &'static str, now: DateTime<Utc>) -> Result<Self, InvalidField> {
        if self.is_before_month_of(now) {
            return Err(InvalidField::new(field, FieldProblem::Expired));
        }
        Ok(self)
    }
}

/// The card verification code (CVC/CVV): 3 digits, 4 on Amex.
///
/// `Debug` prints `CardCvc(***)`; there is deliberately no `Display` and no `Serialize`. Card
/// rules forbid storing it at all, even encrypted, once the payment is authorised.
#[derive(Clone, PartialEq, Eq)]
pub struct CardCvc(String);

impl CardCvc {
    /// Reads 3 or 4 ASCII digits, nothing else (no spaces).
    pub fn parse(field: &'static str, text: &str) -> Result<Self, InvalidField> {
        let invalid = |problem| InvalidField::new(field, problem);
        if text.is_empty() {
            return Err(invalid(FieldProblem::Blank));
        }
        if !text.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(invalid(FieldProblem::InvalidCharacters { allowed: "digits" }));
        }
        if !(3..=4).contains(&text.len()) {
            return Err(invalid(FieldProblem::DigitCount {
                min: 3,
                max: 4,
                actual: text.len(),
            }));
        }
        Ok(Self(text.to_owned()))
    }

    /// The code's digits.
    ///
    /// Only for handing to the tokeniser at the edge. Never store it, put it in an event or a
    /// response, or log it.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

/// Masked entirely, whatever the format flags.
impl fmt::Debug for CardCvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardCvc(***)")
    }
}

/// What may be kept of a card: enough to show it to its owner (`Visa ending 4242, 12/25`) and to
/// recognise it again, nothing that can charge it.
///
/// `fingerprint` is a keyed HMAC of the number computed at the edge (the key never reaches the
/// domain); the same card gives the same fingerprint, so it serves duplicate and fraud checks.
/// Decoding re-checks `last4` (exactly four digits, so a full number cannot travel in it), the
/// month and the year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MaskedCard {
    brand: CardBrand,
    #[serde(deserialize_with = "last4")]
    #[cfg_attr(feature = "schema", schemars(pattern(r"^[0-9]{4}$")))]
    last4: String,
    #[serde(deserialize_with = "exp_month")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 12)))]
    exp_month: u8,
    #[serde(deserialize_with = "exp_year")]
    #[cfg_attr(feature = "schema", schemars(range(min = 2000, max = 2099)))]
    exp_year: u16,
    fingerprint: String,
}

impl MaskedCard {
    pub fn new(number: &CardNumber, expiry: CardExpiry, fingerprint: String) -> Self {
        Self {
            brand: number.brand(),
            last4: number.last4().to_owned(),
            exp_month: expiry.month(),
            exp_year: expiry.year(),
            fingerprint,
        }
    }

    pub fn brand(&self) -> CardBrand {
        self.brand
    }

    pub fn last4(&self) -> &str {
        &self.last4
    }

    pub fn exp_month(&self) -> u8 {
        self.exp_month
    }

    pub fn exp_year(&self) -> u16 {
        self.exp_year
    }

    pub fn expiry(&self) -> CardExpiry {
        CardExpiry {
            month: self.exp_month,
            year: self.exp_year,
        }
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

fn last4<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let last4 = String::deserialize(deserializer)?;
    if last4.len() != 4 || !last4.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(serde::de::Error::custom(InvalidField::new(
            "last4",
            FieldProblem::Format {
                expected: "four digits",
            },
        )));
    }
    Ok(last4)
}

fn exp_month<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u8, D::Error> {
    in_range(u8::deserialize(deserializer)?, "exp_month", 1, 12)
}

fn exp_year<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    in_range(u16::deserialize(deserializer)?, "exp_year", 2000, 2099)
}

fn in_range<T, E>(value: T, field: &'static str, min: T, max: T) -> Result<T, E>
where
    T: PartialOrd + Into<i64>,
    E: serde::de::Error,
{
    if value < min || value > max {
        return Err(E::custom(InvalidField::new(
            field,
            FieldProblem::OutOfRange {
                min: min.into(),
                max: max.into(),
            },
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests;
