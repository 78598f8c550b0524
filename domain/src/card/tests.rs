//! Card numbers, expiries and CVCs as parsed at the edge, and the masked card that is kept.

use super::*;
use crate::testing::assert_refused;

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
    assert_refused(
        CardNumber::parse,
        "card_number",
        &[
            "4242-4242-4242-4242",
            "4242\t4242424242424242",
            "4242\u{a0}4242424242424242",
            "4242.4242.4242.4242",
            "424242424242424x",
            "abcd efgh ijkl mnop",
            "４２４２４２４２４２４２４２４２",
        ],
        FieldProblem::InvalidCharacters {
            allowed: "digits and spaces",
        },
    );
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
    assert_eq!(
        CardCvc::parse("card_cvc", "12").unwrap_err().to_string(),
        "`card_cvc` must have 3 to 4 digits (got 2)"
    );
    assert_eq!(CardCvc::parse("card_cvc", "").unwrap_err().problem, FieldProblem::Blank);
    assert_refused(
        CardCvc::parse,
        "card_cvc",
        &["12a", " 123", "1 23", "１２３"],
        FieldProblem::InvalidCharacters { allowed: "digits" },
    );
}

#[test]
fn expiry_is_exactly_mm_slash_yy() {
    let parsed = expiry("12/25");
    assert_eq!((parsed.month(), parsed.year()), (12, 2025));
    assert_eq!((expiry("01/00").month(), expiry("01/00").year()), (1, 2000));
    assert_eq!(expiry("09/99").year(), 2099);
    assert_refused(
        CardExpiry::parse,
        "card_expiry",
        &[
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
        ],
        FieldProblem::Format { expected: "MM/YY" },
    );
    assert_refused(
        CardExpiry::parse,
        "card_expiry",
        &["13/25", "00/25", "99/25"],
        FieldProblem::MonthOutOfRange,
    );
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
        let mut json: serde_json::Value =
            serde_json::from_str(r#"{"brand":"amex","last4":"0005","exp_month":1,"exp_year":2030,"fingerprint":"fp"}"#)
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
