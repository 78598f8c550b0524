//! Field rules with typed errors naming the field, shared by the HTTP edge and the decoders.

use thiserror::Error;

pub use crate::text::{plain_text, Lines};

/// A request field that breaks a rule; `field` is the name the client sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{field}` {problem}")]
pub struct InvalidField {
    pub field: &'static str,
    pub problem: FieldProblem,
}

impl InvalidField {
    pub fn new(field: &'static str, problem: FieldProblem) -> Self {
        Self { field, problem }
    }
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FieldProblem {
    #[error("is required")]
    Required,
    #[error("must not be blank")]
    Blank,
    #[error("must be at most {max} characters (got {actual})")]
    TooLong { max: usize, actual: usize },
    /// A value outside an integer range, both ends included.
    #[error("must be from {min} to {max}")]
    OutOfRange { min: i64, max: i64 },
    /// Text that does not follow a fixed layout such as `MM/YY`.
    #[error("must be written as {expected}")]
    Format { expected: &'static str },
    /// Text holding characters outside those `allowed`, e.g. "digits and spaces".
    #[error("may contain only {allowed}")]
    InvalidCharacters { allowed: &'static str },
    /// A digit string whose length is outside `min..=max`.
    #[error("must have {min} to {max} digits (got {actual})")]
    DigitCount { min: usize, max: usize, actual: usize },
    /// Text that is not a plain decimal number (`-?(0|[1-9][0-9]*)(\.[0-9]+)?`).
    #[error("must be a plain decimal number such as 100.50")]
    NotADecimal,
    /// A number in exponent form (`1e2`): amounts are written out in full.
    #[error("must be written without an exponent (100 rather than 1e2)")]
    ExponentNotSupported,
    /// A decimal with more significant digits than can be held exactly.
    #[error("must have at most {max} significant digits")]
    TooManyDigits { max: u8 },
    #[error("must be greater than zero")]
    NotPositive,
    #[error("must not be negative")]
    Negative,
    /// An amount with fraction digits the currency has no minor unit for.
    #[error("has more decimals than {currency} allows ({max})")]
    TooManyDecimals { currency: &'static str, max: u8 },
    /// A value above a ceiling; `max` is the ceiling as the client would write it.
    #[error("must be at most {max}")]
    TooLarge { max: String },
    #[error("is not a supported ISO 4217 currency code")]
    UnsupportedCurrency,
    /// A card number whose check digit is wrong: a typo, caught before any network call.
    #[error("is not a valid card number (failed the Luhn check)")]
    FailsLuhn,
    #[error("must have a month from 01 to 12")]
    MonthOutOfRange,
    #[error("has expired")]
    Expired,
    /// A value outside a fixed set; `allowed` lists the set as the client would write it.
    #[error("must be one of: {allowed}")]
    NotInSet { allowed: String },
    /// A JSON value of the wrong kind; `expected` reads like "a string" or "a JSON number".
    #[error("must be {expected}")]
    WrongType { expected: &'static str },
    /// A date-time after the moment the edge accepted the request.
    #[error("must not be in the future")]
    InTheFuture,
    /// Free text holding a C0 or C1 control character (U+0000–U+001F, U+007F–U+009F): PostgreSQL
    /// cannot store a NUL, and no reader can see the others. A multi-line field allows tab and
    /// newline.
    #[error("must not contain control characters{} (found U+{code_point:04X})", lines.exceptions())]
    ControlCharacter { code_point: u32, lines: Lines },
    /// Free text not in Unicode normalization form C. Refused rather than rewritten, so that
    /// what the client sent is what it reads back, byte for byte.
    #[error("must be in Unicode normalization form C (NFC): composed characters, such as é rather than e followed by U+0301")]
    NotNfc,
}

/// Trims `value` and checks it is one line of [plain text](plain_text) of 1..=`max` characters.
pub fn bounded_text(field: &'static str, value: &str, max: usize) -> Result<String, InvalidField> {
    bounded(field, value, max, Lines::Single)
}

/// Trims `value` and checks it is [plain text](plain_text) of 1..=`max` characters, possibly
/// over several lines.
pub fn bounded_lines(field: &'static str, value: &str, max: usize) -> Result<String, InvalidField> {
    bounded(field, value, max, Lines::Multi)
}

fn bounded(field: &'static str, value: &str, max: usize, lines: Lines) -> Result<String, InvalidField> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(InvalidField::new(field, FieldProblem::Blank));
    }
    plain_text(field, trimmed, lines)?;
    at_most(field, trimmed, max).map(str::to_owned)
}

/// Checks `value` holds at most `max` characters (Unicode scalar values, not bytes).
pub fn at_most<'a>(field: &'static str, value: &'a str, max: usize) -> Result<&'a str, InvalidField> {
    let actual = value.chars().count();
    if actual > max {
        return Err(InvalidField::new(field, FieldProblem::TooLong { max, actual }));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_text_trims_and_counts_characters_not_bytes() {
        assert_eq!(bounded_text("name", "  Zoë  ", 3), Ok("Zoë".to_owned()));
        assert_eq!(
            bounded_text("name", "Zoë!", 3),
            Err(InvalidField::new("name", FieldProblem::TooLong { max: 3, actual: 4 }))
        );
    }

    #[test]
    fn bounded_text_rejects_whitespace_only() {
        assert_eq!(
            bounded_text("name", " \t\n", 10),
            Err(InvalidField::new("name", FieldProblem::Blank))
        );
    }

    #[test]
    fn problems_read_naturally_after_the_field_name() {
        for (problem, text) in [
            (FieldProblem::OutOfRange { min: 1, max: 12 }, "`f` must be from 1 to 12"),
            (
                FieldProblem::Format { expected: "MM/YY" },
                "`f` must be written as MM/YY",
            ),
            (
                FieldProblem::InvalidCharacters {
                    allowed: "digits and spaces",
                },
                "`f` may contain only digits and spaces",
            ),
            (
                FieldProblem::DigitCount {
                    min: 3,
                    max: 4,
                    actual: 5,
                },
                "`f` must have 3 to 4 digits (got 5)",
            ),
            (
                FieldProblem::NotADecimal,
                "`f` must be a plain decimal number such as 100.50",
            ),
            (
                FieldProblem::ExponentNotSupported,
                "`f` must be written without an exponent (100 rather than 1e2)",
            ),
            (
                FieldProblem::TooManyDigits { max: 38 },
                "`f` must have at most 38 significant digits",
            ),
            (FieldProblem::NotPositive, "`f` must be greater than zero"),
            (FieldProblem::Negative, "`f` must not be negative"),
            (
                FieldProblem::TooManyDecimals {
                    currency: "USD",
                    max: 2,
                },
                "`f` has more decimals than USD allows (2)",
            ),
            (
                FieldProblem::TooLarge {
                    max: "1000000.00 USD".to_owned(),
                },
                "`f` must be at most 1000000.00 USD",
            ),
            (
                FieldProblem::UnsupportedCurrency,
                "`f` is not a supported ISO 4217 currency code",
            ),
            (
                FieldProblem::FailsLuhn,
                "`f` is not a valid card number (failed the Luhn check)",
            ),
            (FieldProblem::MonthOutOfRange, "`f` must have a month from 01 to 12"),
            (FieldProblem::Expired, "`f` has expired"),
            (
                FieldProblem::NotInSet {
                    allowed: "credit_card, debit_card".to_owned(),
                },
                "`f` must be one of: credit_card, debit_card",
            ),
            (FieldProblem::WrongType { expected: "a string" }, "`f` must be a string"),
            (FieldProblem::InTheFuture, "`f` must not be in the future"),
        ] {
            assert_eq!(InvalidField::new("f", problem).to_string(), text);
        }
    }

    #[test]
    fn error_names_the_field() {
        let err = InvalidField::new("note", FieldProblem::TooLong { max: 2, actual: 5 });
        assert_eq!(err.to_string(), "`note` must be at most 2 characters (got 5)");
    }
}
