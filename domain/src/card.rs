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
mod tests {
    use super::*;

    const VALID: [&str; 3] = ["4242 4242 4242 4242", "4000 0000 0000 0002", "4000 0000 0000 9995"];

    fn number(text: &str) -> CardNumber {
        CardNumber::parse("card_number", text).unwrap()
    }

    fn number_problem(text: &str) -> FieldProblem {
        let err = CardNumber::parse("card_number", text).unwrap_err();
        assert_eq!(err.field, "card_number");
        err.problem
    }

    /// `body` followed by the check digit that makes it pass Luhn.
    fn with_check_digit(body: &str) -> String {
        (0..=9)
            .map(|digit| format!("{body}{digit}"))
            .find(|candidate| passes_luhn(candidate))
            .unwrap()
    }

    fn expiry(text: &str) -> CardExpiry {
        CardExpiry::parse("card_expiry", text).unwrap()
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        rfc3339.parse().unwrap()
    }

    #[test]
    fn luhn_valid_numbers_parse_with_or_without_spaces() {
        for text in VALID {
            let compact = text.replace(' ', "");
            assert_eq!(number(text).digits(), compact);
            assert_eq!(number(&compact).digits(), compact);
        }
        assert_eq!(number(" 4242424242424242 ").digits(), "4242424242424242");
        assert_eq!(number("42  42424242424242").last4(), "4242");
    }

    #[test]
    fn a_wrong_check_digit_is_refused() {
        assert_eq!(number_problem("4242 4242 4242 4241"), FieldProblem::FailsLuhn);
        assert_eq!(number_problem("4000 0000 0000 0003"), FieldProblem::FailsLuhn);
        assert_eq!(
            CardNumber::parse("card_number", "4242424242424241")
                .unwrap_err()
                .to_string(),
            "`card_number` is not a valid card number (failed the Luhn check)"
        );
    }

    #[test]
    fn numbers_have_12_to_19_digits() {
        assert!(CardNumber::parse("card_number", &with_check_digit(&"4".repeat(11))).is_ok());
        assert!(CardNumber::parse("card_number", &with_check_digit(&"4".repeat(18))).is_ok());
        for (len, text) in [
            (11, with_check_digit(&"4".repeat(10))),
            (20, with_check_digit(&"4".repeat(19))),
            (4, "4242".to_owned()),
        ] {
            assert_eq!(
                number_problem(&text),
                FieldProblem::DigitCount {
                    min: 12,
                    max: 19,
                    actual: len
                }
            );
        }
        assert_eq!(number_problem(""), FieldProblem::Blank);
        assert_eq!(number_problem("   "), FieldProblem::Blank);
    }

    #[test]
    fn only_digits_and_ascii_spaces_are_allowed() {
        for text in [
            "4242-4242-4242-4242",
            "4242\t4242424242424242",
            "4242\u{a0}4242424242424242",
            "4242.4242.4242.4242",
            "424242424242424x",
            "abcd efgh ijkl mnop",
            "４２４２４２４２４２４２４２４２",
        ] {
            assert_eq!(
                number_problem(text),
                FieldProblem::InvalidCharacters {
                    allowed: "digits and spaces"
                },
                "{text:?}"
            );
        }
    }

    #[test]
    fn brands_are_told_from_the_leading_digits() {
        for (body, brand) in [
            ("424242424242424", CardBrand::Visa),
            ("400000000000", CardBrand::Visa),
            ("510000000000000", CardBrand::Mastercard),
            ("555555555555444", CardBrand::Mastercard),
            ("222100000000000", CardBrand::Mastercard),
            ("272099999999999", CardBrand::Mastercard),
            ("34000000000000", CardBrand::Amex),
            ("37828224631000", CardBrand::Amex),
            ("601111111111111", CardBrand::Discover),
            ("644000000000000", CardBrand::Discover),
            ("649999999999999", CardBrand::Discover),
            ("650000000000000", CardBrand::Discover),
            ("352800000000000", CardBrand::Jcb),
            ("358999999999999", CardBrand::Jcb),
            ("3000000000000", CardBrand::DinersClub),
            ("3059999999999", CardBrand::DinersClub),
            ("3622720627166", CardBrand::DinersClub),
            ("3852000002323", CardBrand::DinersClub),
            ("620000000000000", CardBrand::UnionPay),
            ("622126000000000", CardBrand::UnionPay),
            ("222000000000000", CardBrand::Unknown),
            ("272100000000000", CardBrand::Unknown),
            ("560000000000000", CardBrand::Unknown),
            ("601200000000000", CardBrand::Unknown),
            ("643000000000000", CardBrand::Unknown),
            ("352700000000000", CardBrand::Unknown),
            ("359000000000000", CardBrand::Unknown),
            ("3060000000000", CardBrand::Unknown),
            ("100000000000000", CardBrand::Unknown),
            ("900000000000000", CardBrand::Unknown),
        ] {
            assert_eq!(number(&with_check_digit(body)).brand(), brand, "{body}");
        }
    }

    #[test]
    fn brands_travel_in_snake_case_matching_as_str() {
        for brand in [
            CardBrand::Visa,
            CardBrand::Mastercard,
            CardBrand::Amex,
            CardBrand::Discover,
            CardBrand::Jcb,
            CardBrand::DinersClub,
            CardBrand::UnionPay,
            CardBrand::Unknown,
        ] {
            assert_eq!(
                serde_json::to_string(&brand).unwrap(),
                format!("\"{}\"", brand.as_str())
            );
        }
        assert_eq!(CardBrand::DinersClub.as_str(), "diners_club");
        assert_eq!(CardBrand::UnionPay.as_str(), "union_pay");
    }

    #[test]
    fn debug_never_shows_the_full_number() {
        let card = number("4242 4242 4242 4242");
        assert_eq!(format!("{card:?}"), "CardNumber(visa ****4242)");
        assert_eq!(format!("{card:#?}"), "CardNumber(visa ****4242)");
        for text in VALID {
            let card = number(text);
            let digits = card.digits().to_owned();
            #[allow(dead_code)]
            #[derive(Debug)]
            struct Request {
                card: CardNumber,
            }
            for shown in [format!("{card:?}"), format!("{:#?}", Request { card })] {
                assert!(!shown.contains(&digits), "{shown}");
                assert!(!shown.contains(&digits[..12]), "{shown}");
            }
        }
    }

    #[test]
    fn debug_never_shows_the_cvc() {
        for text in ["123", "9876"] {
            let cvc = CardCvc::parse("card_cvc", text).unwrap();
            assert_eq!(cvc.digits(), text);
            assert_eq!(format!("{cvc:?}"), "CardCvc(***)");
            assert!(!format!("{cvc:#?}").contains(text));
        }
    }

    #[test]
    fn card_secrets_cannot_be_serialised_or_displayed() {
        // `XProbe::<T>::IMPLEMENTED` is the inherent constant (true) when `T` has the trait and
        // falls back to `Missing`'s (false) when it does not: a compile-time fact, no extra crate.
        trait Missing {
            const IMPLEMENTED: bool = false;
        }
        struct SerializeProbe<T>(std::marker::PhantomData<T>);
        impl<T> Missing for SerializeProbe<T> {}
        impl<T: Serialize> SerializeProbe<T> {
            const IMPLEMENTED: bool = true;
        }
        struct DisplayProbe<T>(std::marker::PhantomData<T>);
        impl<T> Missing for DisplayProbe<T> {}
        impl<T: fmt::Display> DisplayProbe<T> {
            const IMPLEMENTED: bool = true;
        }

        const { assert!(!SerializeProbe::<CardNumber>::IMPLEMENTED) };
        const { assert!(!SerializeProbe::<CardCvc>::IMPLEMENTED) };
        const { assert!(!DisplayProbe::<CardNumber>::IMPLEMENTED) };
        const { assert!(!DisplayProbe::<CardCvc>::IMPLEMENTED) };
        // The probes do see the traits where they exist.
        const { assert!(SerializeProbe::<MaskedCard>::IMPLEMENTED) };
        const { assert!(DisplayProbe::<u8>::IMPLEMENTED) };
    }

    #[test]
    fn cvc_has_3_or_4_digits() {
        assert!(CardCvc::parse("card_cvc", "123").is_ok());
        assert!(CardCvc::parse("card_cvc", "1234").is_ok());
        for (text, actual) in [("12", 2), ("12345", 5)] {
            assert_eq!(
                CardCvc::parse("card_cvc", text),
                Err(InvalidField::new(
                    "card_cvc",
                    FieldProblem::DigitCount { min: 3, max: 4, actual }
                ))
            );
        }
        assert_eq!(CardCvc::parse("card_cvc", "").unwrap_err().problem, FieldProblem::Blank);
        for text in ["12a", " 123", "1 23", "１２３"] {
            assert_eq!(
                CardCvc::parse("card_cvc", text).unwrap_err().problem,
                FieldProblem::InvalidCharacters { allowed: "digits" },
                "{text:?}"
            );
        }
        assert_eq!(
            CardCvc::parse("card_cvc", "12").unwrap_err().to_string(),
            "`card_cvc` must have 3 to 4 digits (got 2)"
        );
    }

    #[test]
    fn expiry_is_exactly_mm_slash_yy() {
        let parsed = expiry("12/25");
        assert_eq!((parsed.month(), parsed.year()), (12, 2025));
        assert_eq!((expiry("01/00").month(), expiry("01/00").year()), (1, 2000));
        assert_eq!(expiry("09/99").year(), 2099);
        for text in [
            "1/25",
            "01/2025",
            "01-25",
            "0125",
            "01/5",
            " 01/25",
            "01/25 ",
            "ab/cd",
            "",
            "１２/25",
        ] {
            assert_eq!(
                CardExpiry::parse("card_expiry", text),
                Err(InvalidField::new(
                    "card_expiry",
                    FieldProblem::Format { expected: "MM/YY" }
                )),
                "{text:?}"
            );
        }
        for text in ["13/25", "00/25", "99/25"] {
            assert_eq!(
                CardExpiry::parse("card_expiry", text),
                Err(InvalidField::new("card_expiry", FieldProblem::MonthOutOfRange)),
                "{text}"
            );
        }
        assert_eq!(
            CardExpiry::parse("card_expiry", "1/25").unwrap_err().to_string(),
            "`card_expiry` must be written as MM/YY"
        );
    }

    #[test]
    fn a_card_is_valid_through_the_end_of_its_expiry_month() {
        let december = expiry("12/25");
        assert!(!december.is_before_month_of(at("2025-12-01T00:00:00Z")));
        assert!(!december.is_before_month_of(at("2025-12-31T23:59:00Z")));
        assert!(!december.is_before_month_of(at("2025-12-31T23:59:59.999Z")));
        assert!(!december.is_before_month_of(at("2024-06-15T12:00:00Z")));
        assert!(december.is_before_month_of(at("2026-01-01T00:00:00Z")));
        assert!(december.is_before_month_of(at("2031-03-01T00:00:00Z")));

        let june = expiry("06/27");
        assert!(!june.is_before_month_of(at("2027-06-30T23:59:59Z")));
        assert!(june.is_before_month_of(at("2027-07-01T00:00:00Z")));
        assert!(!june.is_before_month_of(at("2026-12-31T00:00:00Z")));

        assert_eq!(
            december.ensure_valid_at("card_expiry", at("2025-12-31T23:59:00Z")),
            Ok(december)
        );
        assert_eq!(
            december
                .ensure_valid_at("card_expiry", at("2026-01-01T00:00:00Z"))
                .unwrap_err()
                .to_string(),
            "`card_expiry` has expired"
        );
    }

    #[test]
    fn a_masked_card_keeps_only_what_may_be_stored() {
        let card = number("4242 4242 4242 4242");
        let masked = MaskedCard::new(&card, expiry("12/25"), "fp_3b5c".to_owned());
        assert_eq!(masked.brand(), CardBrand::Visa);
        assert_eq!(masked.last4(), "4242");
        assert_eq!((masked.exp_month(), masked.exp_year()), (12, 2025));
        assert_eq!(masked.expiry(), expiry("12/25"));
        assert_eq!(masked.fingerprint(), "fp_3b5c");

        let json = serde_json::to_string(&masked).unwrap();
        assert_eq!(
            json,
            r#"{"brand":"visa","last4":"4242","exp_month":12,"exp_year":2025,"fingerprint":"fp_3b5c"}"#
        );
        assert!(!json.contains(card.digits()));
        assert_eq!(serde_json::from_str::<MaskedCard>(&json).unwrap(), masked);
        assert!(!format!("{masked:?}").contains(card.digits()));
    }

    #[test]
    fn decoding_a_masked_card_rechecks_it() {
        let with = |field: &str, value: &str| {
            let mut json: serde_json::Value = serde_json::from_str(
                r#"{"brand":"amex","last4":"0005","exp_month":1,"exp_year":2030,"fingerprint":"fp"}"#,
            )
            .unwrap();
            json[field] = serde_json::from_str(value).unwrap();
            serde_json::from_value::<MaskedCard>(json)
        };
        assert_eq!(
            with("brand", r#""diners_club""#).unwrap().brand(),
            CardBrand::DinersClub
        );
        for (field, value, message) in [
            (
                "last4",
                r#""4242424242424242""#,
                "`last4` must be written as four digits",
            ),
            ("last4", r#""424""#, "`last4` must be written as four digits"),
            ("last4", r#""42a2""#, "`last4` must be written as four digits"),
            ("exp_month", "13", "`exp_month` must be from 1 to 12"),
            ("exp_month", "0", "`exp_month` must be from 1 to 12"),
            ("exp_year", "25", "`exp_year` must be from 2000 to 2099"),
            ("brand", r#""dinersclub""#, "unknown variant"),
        ] {
            let err = with(field, value).unwrap_err().to_string();
            assert!(err.contains(message), "{field}={value}: {err}");
        }
    }

    #[cfg(feature = "schema")]
    #[test]
    fn the_masked_card_schema_states_the_decoding_rules() {
        let schema = serde_json::to_value(schemars::schema_for!(MaskedCard)).unwrap();
        let properties = &schema["properties"];
        assert_eq!(properties["last4"]["pattern"], "^[0-9]{4}$");
        assert_eq!(properties["exp_month"]["minimum"], 1);
        assert_eq!(properties["exp_month"]["maximum"], 12);
        assert_eq!(properties["exp_year"]["minimum"], 2000);
        assert_eq!(properties["brand"]["$ref"], "#/$defs/CardBrand");
    }
}
