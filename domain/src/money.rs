//! Money without floats: ISO 4217 currencies, exact decimals parsed from the client's text, and
//! amounts held as an integer count of the currency's minor unit.
//!
//! A binary float cannot hold `0.10` exactly, so an amount that passed through an `f64` may
//! already be off by a fraction of a cent before any rule sees it. Amounts therefore enter as the
//! text the client wrote ([`Decimal::parse`]), are checked against the currency's minor unit
//! ([`Money::from_decimal`]) and then live as `i64` minor units. Nothing here touches an `f64`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::schema::fixed_schema;
use crate::validation::{FieldProblem, InvalidField};

/// One row of the currency table: the ISO 4217 code, how many decimals its minor unit has, and
/// its English name.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Iso4217 {
    code: &'static str,
    minor_unit: u8,
    name: &'static str,
}

const fn iso(code: &'static str, minor_unit: u8, name: &'static str) -> Iso4217 {
    Iso4217 { code, minor_unit, name }
}

/// The currencies orderstream accepts. Adding one is adding a row; removing one would strand
/// events that carry it, since decoding re-checks the code against this table.
static CURRENCIES: &[Iso4217] = &[
    iso("USD", 2, "US dollar"),
    iso("EUR", 2, "Euro"),
    iso("GBP", 2, "Pound sterling"),
    iso("CHF", 2, "Swiss franc"),
    iso("CAD", 2, "Canadian dollar"),
    iso("AUD", 2, "Australian dollar"),
    iso("NZD", 2, "New Zealand dollar"),
    iso("SEK", 2, "Swedish krona"),
    iso("NOK", 2, "Norwegian krone"),
    iso("DKK", 2, "Danish krone"),
    iso("PLN", 2, "Polish zloty"),
    iso("CZK", 2, "Czech koruna"),
    iso("HUF", 2, "Hungarian forint"),
    iso("CNY", 2, "Renminbi"),
    iso("HKD", 2, "Hong Kong dollar"),
    iso("SGD", 2, "Singapore dollar"),
    iso("INR", 2, "Indian rupee"),
    iso("BRL", 2, "Brazilian real"),
    iso("MXN", 2, "Mexican peso"),
    iso("ZAR", 2, "South African rand"),
    iso("TRY", 2, "Turkish lira"),
    iso("ILS", 2, "Israeli new shekel"),
    iso("AED", 2, "UAE dirham"),
    iso("SAR", 2, "Saudi riyal"),
    iso("THB", 2, "Thai baht"),
    iso("MYR", 2, "Malaysian ringgit"),
    iso("PHP", 2, "Philippine peso"),
    iso("IDR", 2, "Indonesian rupiah"),
    iso("TWD", 2, "New Taiwan dollar"),
    iso("JPY", 0, "Japanese yen"),
    iso("KRW", 0, "South Korean won"),
    iso("ISK", 0, "Icelandic krona"),
    iso("CLP", 0, "Chilean peso"),
    iso("VND", 0, "Vietnamese dong"),
    iso("KWD", 3, "Kuwaiti dinar"),
    iso("BHD", 3, "Bahraini dinar"),
    iso("JOD", 3, "Jordanian dinar"),
    iso("OMR", 3, "Omani rial"),
    iso("TND", 3, "Tunisian dinar"),
];

/// A supported ISO 4217 currency. Only [`Currency::parse`] makes one, so holding a `Currency`
/// means its code is in the table and its minor unit is known.
///
/// On the wire it is the code string (`"USD"`); decoding goes through [`Currency::parse`], so an
/// event naming a currency that is no longer supported fails to decode instead of being guessed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(&'static Iso4217);

impl Currency {
    /// Looks `code` up in the table: exactly three upper-case letters as ISO 4217 writes them
    /// (`"usd"` and `" USD"` are refused rather than repaired, so one currency has one spelling).
    pub fn parse(field: &'static str, code: &str) -> Result<Self, InvalidField> {
        CURRENCIES
            .iter()
            .find(|row| row.code == code)
            .map(Self)
            .ok_or(InvalidField::new(field, FieldProblem::UnsupportedCurrency))
    }

    /// Every supported currency, in table order.
    pub fn all() -> impl Iterator<Item = Self> {
        CURRENCIES.iter().map(Self)
    }

    /// The ISO 4217 code, e.g. `"USD"`.
    pub fn code(self) -> &'static str {
        self.0.code
    }

    /// How many decimals the minor unit has: 2 for USD (cents), 0 for JPY, 3 for KWD (fils).
    pub fn minor_unit(self) -> u8 {
        self.0.minor_unit
    }

    /// The English name, e.g. `"US dollar"`.
    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// How many minor units make one major unit: 10^[`minor_unit`](Self::minor_unit).
    fn minor_per_major(self) -> i64 {
        10_i64.pow(u32::from(self.minor_unit()))
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Implements serde for `$type`, which travels as a string: written as its `Display` text and read
/// back through its own `parse` (naming the field `$field`), so what comes from the log is checked
/// exactly as what comes from a client.
macro_rules! string_serde {
    ($type:ident, $field:literal) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                Self::parse($field, &text).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_serde!(Currency, "currency");

fixed_schema!(Currency, {
    "description": "ISO 4217 currency code.",
    "type": "string",
    "enum": Self::all().map(Self::code).collect::<Vec<&str>>(),
});

/// An exact decimal number, parsed from the text of a JSON number as the client wrote it.
///
/// Held as `mantissa / 10^scale` with trailing fraction zeros removed, so `100.50` and `100.5`
/// are the same value (and compare equal), and zero is always `0` with scale 0 (`-0` included).
/// Negative numbers and zero are representable: whether they are allowed is the caller's rule.
///
/// On the wire (a command carrying the client's amount until the currency is known) it is a JSON
/// *string* in canonical form, `"100.5"`: a JSON number would be read back as a float by most
/// consumers, which is the very loss this type exists to avoid. Decoding goes through
/// [`Decimal::parse`], naming the field `amount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    mantissa: i128,
    scale: u8,
}

impl Decimal {
    /// The most significant digits a decimal may have: every 38-digit integer fits in an `i128`,
    /// and no real amount comes close.
    pub const MAX_DIGITS: u8 = 38;

    /// Parses `text` written as `-?(0|[1-9][0-9]*)(\.[0-9]+)?`: JSON's number grammar without
    /// the exponent.
    ///
    /// Exponent form (`1e2`, `1.5E-3`) is refused with its own problem rather than evaluated:
    /// nobody writes a price that way, and accepting it would invite `1e400`-style inputs whose
    /// expansion is the parser's problem. Anything else JSON would not accept as a number
    /// (`+1`, `01`, `.5`, `5.`, `1,000`, surrounding spaces) is [`FieldProblem::NotADecimal`].
    /// At most [`MAX_DIGITS`](Self::MAX_DIGITS) significant digits (leading zeros of `0.05` and
    /// trailing fraction zeros do not count against it, the zeros after the point do).
    pub fn parse(field: &'static str, text: &str) -> Result<Self, InvalidField> {
        let invalid = |problem| InvalidField::new(field, problem);
        let (negative, rest) = match text.as_bytes() {
            [b'-', rest @ ..] => (true, rest),
            bytes => (false, bytes),
        };
        let (integer, rest) = rest.split_at(leading_digits(rest));
        if integer.is_empty() || (integer.len() > 1 && integer[0] == b'0') {
            return Err(invalid(FieldProblem::NotADecimal));
        }
        let (fraction, rest) = match rest {
            [b'.', rest @ ..] => {
                let fraction = rest.split_at(leading_digits(rest));
                if fraction.0.is_empty() {
                    return Err(invalid(FieldProblem::NotADecimal));
                }
                fraction
            }
            _ => (&[][..], rest),
        };
        match rest {
            [] => {}
            [b'e' | b'E', ..] => return Err(invalid(FieldProblem::ExponentNotSupported)),
            _ => return Err(invalid(FieldProblem::NotADecimal)),
        }

        let integer = if integer == b"0" { &[][..] } else { integer };
        let fraction = &fraction[..fraction.len() - trailing_zeros(fraction)];
        let digits = integer.len() + fraction.len();
        if digits > usize::from(Self::MAX_DIGITS) {
            return Err(invalid(FieldProblem::TooManyDigits { max: Self::MAX_DIGITS }));
        }
        // At most 38 digits, so this cannot overflow.
        let magnitude = integer
            .iter()
            .chain(fraction)
            .fold(0_i128, |acc, digit| acc * 10 + i128::from(digit - b'0'));
        Ok(Self {
            mantissa: if negative { -magnitude } else { magnitude },
            // At most 38, checked above.
            scale: u8::try_from(fraction.len()).unwrap_or(Self::MAX_DIGITS),
        })
    }

    /// The digits as an integer, signed: `-100.5` is mantissa `-1005`, scale 1.
    pub fn mantissa(&self) -> i128 {
        self.mantissa
    }

    /// How many digits follow the decimal point, trailing zeros excluded.
    pub fn scale(&self) -> u8 {
        self.scale
    }
}

/// Writes the canonical form: no exponent, no trailing fraction zeros (`100.5`, `-0.05`, `0`).
impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let magnitude = self.mantissa.unsigned_abs();
        if self.scale == 0 {
            return write!(f, "{sign}{magnitude}");
        }
        let unit = 10_u128.pow(u32::from(self.scale));
        let width = usize::from(self.scale);
        write!(f, "{sign}{}.{:0width$}", magnitude / unit, magnitude % unit)
    }
}

string_serde!(Decimal, "amount");

fixed_schema!(Decimal, {
    "description": "An exact decimal number written as a string, without exponent.",
    "type": "string",
    "pattern": DECIMAL_PATTERN,
});

/// The text [`Decimal::parse`] accepts, before its limit on significant digits.
#[cfg(feature = "schema")]
const DECIMAL_PATTERN: &str = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$";

fn leading_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|byte| byte.is_ascii_digit()).count()
}

fn trailing_zeros(bytes: &[u8]) -> usize {
    bytes.iter().rev().take_while(|&&byte| byte == b'0').count()
}

/// An amount of one currency, as a whole number of its minor unit (cents for USD, yen for JPY).
///
/// Never negative: prices and totals are amounts, and a refund is a separate fact rather than a
/// negative amount. Serialised as `{"minor": 10050, "currency": "USD"}`; decoding re-checks both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "MoneyWire")]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// The largest amount [`from_decimal`](Self::from_decimal) accepts, in major units: far above
    /// any real order, low enough that a typo of a few extra digits is caught and that sums of
    /// many amounts stay far from `i64` overflow.
    pub const MAX_MAJOR_UNITS: i64 = 1_000_000;

    /// Turns an amount the client wrote into money, for the edge: it must be greater than zero,
    /// have no more significant decimals than the currency's minor unit (`100.500` USD is fine and
    /// is 10050 cents; `100.505` is not), and be at most [`MAX_MAJOR_UNITS`](Self::MAX_MAJOR_UNITS).
    pub fn from_decimal(field: &'static str, decimal: Decimal, currency: Currency) -> Result<Self, InvalidField> {
        let invalid = |problem| InvalidField::new(field, problem);
        if decimal.mantissa() <= 0 {
            return Err(invalid(FieldProblem::NotPositive));
        }
        let minor_unit = currency.minor_unit();
        if decimal.scale() > minor_unit {
            return Err(invalid(FieldProblem::TooManyDecimals {
                currency: currency.code(),
                max: minor_unit,
            }));
        }
        let too_large = || {
            invalid(FieldProblem::TooLarge {
                max: Self::max(currency).to_string(),
            })
        };
        let minor = decimal
            .mantissa()
            .checked_mul(10_i128.pow(u32::from(minor_unit - decimal.scale())))
            .and_then(|minor| i64::try_from(minor).ok())
            .ok_or_else(too_large)?;
        if minor > Self::max(currency).minor {
            return Err(too_large());
        }
        Ok(Self { minor, currency })
    }

    /// Rebuilds money from a count of minor units, for decoding and arithmetic. Unlike
    /// [`from_decimal`](Self::from_decimal) it allows zero (an empty total, a fully discounted
    /// line) and has no ceiling beyond `i64` (a total may add up many capped amounts); only a
    /// negative count is refused.
    pub fn from_minor(minor: i64, currency: Currency) -> Result<Self, InvalidField> {
        if minor < 0 {
            return Err(InvalidField::new("minor", FieldProblem::Negative));
        }
        Ok(Self { minor, currency })
    }

    /// Nothing of `currency`: the start of a running total.
    pub fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    /// The largest amount [`from_decimal`](Self::from_decimal) accepts in `currency`.
    pub fn max(currency: Currency) -> Self {
        Self {
            minor: Self::MAX_MAJOR_UNITS * currency.minor_per_major(),
            currency,
        }
    }

    /// The amount as a whole number of the currency's minor unit.
    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount written with exactly the currency's decimals and no symbol: `"100.50"` for
    /// USD, `"100"` for JPY, `"1.005"` for KWD. [`Decimal::parse`] reads it back.
    pub fn to_decimal_string(&self) -> String {
        let minor_unit = usize::from(self.currency.minor_unit());
        if minor_unit == 0 {
            return self.minor.to_string();
        }
        let per_major = self.currency.minor_per_major();
        format!("{}.{:0minor_unit$}", self.minor / per_major, self.minor % per_major)
    }

    /// The sum, or `None` if the currencies differ or it would overflow `i64`.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        if self.currency != other.currency {
            return None;
        }
        let minor = self.minor.checked_add(other.minor)?;
        Some(Self { minor, ..self })
    }

    /// The difference, or `None` if the currencies differ or it would fall below zero (money is
    /// never negative).
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        if self.currency != other.currency {
            return None;
        }
        let minor = self.minor.checked_sub(other.minor).filter(|minor| *minor >= 0)?;
        Some(Self { minor, ..self })
    }
}

/// `100.50 USD`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

/// Money as decoded, before [`Money::from_minor`] checks it.
#[derive(Deserialize)]
struct MoneyWire {
    minor: i64,
    currency: Currency,
}

impl TryFrom<MoneyWire> for Money {
    type Error = InvalidField;
    fn try_from(wire: MoneyWire) -> Result<Self, Self::Error> {
        Self::from_minor(wire.minor, wire.currency)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Money {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Money".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let currency = generator.subschema_for::<Currency>();
        schemars::json_schema!({
            "description": "An amount as a whole number of the currency's minor unit (cents for USD).",
            "type": "object",
            "properties": {
                "minor": { "type": "integer", "format": "int64", "minimum": 0 },
                "currency": currency,
            },
            "required": ["minor", "currency"],
        })
    }
}

#[cfg(test)]
mod tests;
