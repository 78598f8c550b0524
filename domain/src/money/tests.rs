//! Currencies, decimals and amounts: parsing, exact arithmetic and the wire form.

use super::*;
use crate::testing::assert_refused;
use proptest::prelude::*;

fn currency(code: &str) -> Currency {
    Currency::parse("currency", code).unwrap()
}

fn money(text: &str, code: &str) -> Result<Money, InvalidField> {
    Money::from_decimal("amount", Decimal::parse("amount", text)?, currency(code))
}

fn problem(result: Result<impl fmt::Debug, InvalidField>) -> FieldProblem {
    let err = result.unwrap_err();
    assert_eq!(err.field, "amount");
    err.problem
}

#[test]
fn the_table_knows_each_minor_unit() {
    for (codes, minor_unit) in [
        (
            &[
                "USD", "EUR", "GBP", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "CNY",
                "HKD", "SGD", "INR", "BRL", "MXN", "ZAR", "TRY", "ILS", "AED", "SAR", "THB", "MYR", "PHP", "IDR",
                "TWD",
            ][..],
            2,
        ),
        (&["JPY", "KRW", "ISK", "CLP", "VND"][..], 0),
        (&["KWD", "BHD", "JOD", "OMR", "TND"][..], 3),
    ] {
        for code in codes {
            let currency = currency(code);
            assert_eq!((currency.code(), currency.minor_unit()), (*code, minor_unit));
        }
    }
    assert_eq!(Currency::all().count(), 39);
    assert_eq!(currency("USD").name(), "US dollar");
}

#[test]
fn codes_in_the_table_are_unique_and_well_formed() {
    let codes: std::collections::HashSet<_> = Currency::all().map(Currency::code).collect();
    assert_eq!(codes.len(), CURRENCIES.len());
    assert!(codes
        .iter()
        .all(|code| code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())));
}

#[test]
fn currency_codes_are_exact() {
    assert_refused(
        Currency::parse,
        "currency",
        &["usd", "Usd", " USD", "USD ", "US", "USDD", "XXX", "BTC", ""],
        FieldProblem::UnsupportedCurrency,
    );
    assert_eq!(
        Currency::parse("price_currency", "usd").unwrap_err().to_string(),
        "`price_currency` is not a supported ISO 4217 currency code"
    );
}

#[test]
fn currency_travels_as_its_code_and_is_rechecked_on_decoding() {
    assert_eq!(serde_json::to_string(&currency("EUR")).unwrap(), r#""EUR""#);
    assert_eq!(serde_json::from_str::<Currency>(r#""JPY""#).unwrap(), currency("JPY"));
    let err = serde_json::from_str::<Currency>(r#""eur""#).unwrap_err();
    assert!(err.to_string().contains("not a supported ISO 4217"), "{err}");
    assert!(serde_json::from_str::<Currency>("840").is_err());
}

#[test]
fn decimals_are_read_exactly_and_normalised() {
    for (text, mantissa, scale, canonical) in [
        ("0", 0, 0, "0"),
        ("-0", 0, 0, "0"),
        ("0.000", 0, 0, "0"),
        ("100", 100, 0, "100"),
        ("100.50", 1005, 1, "100.5"),
        ("100.500", 1005, 1, "100.5"),
        ("0.05", 5, 2, "0.05"),
        ("-12.340", -1234, 2, "-12.34"),
        ("1.005", 1005, 3, "1.005"),
    ] {
        let decimal = Decimal::parse("amount", text).unwrap();
        assert_eq!((decimal.mantissa(), decimal.scale()), (mantissa, scale), "{text}");
        assert_eq!(decimal.to_string(), canonical, "{text}");
    }
    assert_eq!(
        Decimal::parse("amount", "100.50").unwrap(),
        Decimal::parse("amount", "100.5").unwrap()
    );
}

#[test]
fn only_plain_decimal_text_is_a_decimal() {
    assert_refused(
        Decimal::parse,
        "amount",
        &[
            "", "-", "+1", "01", "-01", "00.5", ".5", "5.", "-.5", "1.2.3", "1,000", "1 000", " 1", "1 ", "0x10",
            "NaN", "Infinity", "--1", "1-", "١٢", "１", "1.5a", "abc",
        ],
        FieldProblem::NotADecimal,
    );
    assert_refused(
        Decimal::parse,
        "amount",
        &["1e2", "1E2", "1.5e-3", "-2E+10", "0e0"],
        FieldProblem::ExponentNotSupported,
    );
}

#[test]
fn decimals_hold_at_most_38_significant_digits() {
    let max = "9".repeat(38);
    assert_eq!(
        Decimal::parse("amount", &max).unwrap().mantissa(),
        max.parse::<i128>().unwrap()
    );
    assert!(Decimal::parse("amount", &format!("0.{max}")).is_ok());
    assert!(Decimal::parse("amount", &format!("1{}.{}", "0".repeat(37), "0".repeat(500))).is_ok());
    for text in [
        "9".repeat(39),
        format!("0.{}1", "0".repeat(38)),
        format!("-{}", "1".repeat(39)),
    ] {
        assert_eq!(
            problem(Decimal::parse("amount", &text)),
            FieldProblem::TooManyDigits { max: 38 }
        );
    }
}

#[test]
fn decimals_travel_as_canonical_strings_and_are_rechecked() {
    let decimal = Decimal::parse("amount", "100.50").unwrap();
    assert_eq!(serde_json::to_string(&decimal).unwrap(), r#""100.5""#);
    assert_eq!(serde_json::from_str::<Decimal>(r#""100.50""#).unwrap(), decimal);
    assert_eq!(
        serde_json::from_str::<Decimal>(r#""-0.05""#).unwrap().to_string(),
        "-0.05"
    );
    for bad in [r#""1e2""#, r#""abc""#, r#""""#, "100.5", "100"] {
        assert!(serde_json::from_str::<Decimal>(bad).is_err(), "{bad}");
    }
    let err = serde_json::from_str::<Decimal>(r#""1e2""#).unwrap_err();
    assert!(
        err.to_string().contains("`amount` must be written without an exponent"),
        "{err}"
    );
}

#[test]
fn amounts_are_read_in_the_currency_minor_unit_and_bounded() {
    use FieldProblem::{NotPositive, TooLarge, TooManyDecimals};
    let too_precise = |currency, max| Err(TooManyDecimals { currency, max });
    let too_large = |max: &str| Err(TooLarge { max: max.to_owned() });
    for (text, code, expected) in [
        ("100.50", "USD", Ok(10050)),
        ("100.5", "USD", Ok(10050)),
        ("100", "USD", Ok(10000)),
        ("0.01", "USD", Ok(1)),
        ("1500.000", "JPY", Ok(1500)),
        ("1.005", "KWD", Ok(1005)),
        ("1.5", "KWD", Ok(1500)),
        ("1000000", "USD", Ok(100_000_000)),
        ("1000000.00", "USD", Ok(100_000_000)),
        ("1000000", "JPY", Ok(1_000_000)),
        ("1000000.000", "KWD", Ok(1_000_000_000)),
        // More decimals than the currency has.
        ("100.505", "USD", too_precise("USD", 2)),
        ("0.001", "EUR", too_precise("EUR", 2)),
        ("1500.5", "JPY", too_precise("JPY", 0)),
        ("1.0005", "KWD", too_precise("KWD", 3)),
        // Nothing, or less.
        ("0", "USD", Err(NotPositive)),
        ("0.00", "USD", Err(NotPositive)),
        ("-0", "USD", Err(NotPositive)),
        ("-1", "USD", Err(NotPositive)),
        ("-0.01", "USD", Err(NotPositive)),
        ("-1.005", "USD", Err(NotPositive)),
        // Over a million major units.
        ("1000000.01", "USD", too_large("1000000.00 USD")),
        ("1000001", "JPY", too_large("1000000 JPY")),
        ("1000000.001", "KWD", too_large("1000000.000 KWD")),
        (&"9".repeat(38), "KWD", too_large("1000000.000 KWD")),
        ("99999999999999999999", "USD", too_large("1000000.00 USD")),
    ] {
        let read = money(text, code)
            .map(|money| (money.minor(), money.currency()))
            .map_err(|err| (err.field, err.problem));
        let expected = expected
            .map(|minor| (minor, currency(code)))
            .map_err(|problem| ("amount", problem));
        assert_eq!(read, expected, "{text} {code}");
    }
}

#[test]
fn a_refused_amount_says_why() {
    for (text, message) in [
        ("100.505", "`amount` has more decimals than USD allows (2)"),
        ("0", "`amount` must be greater than zero"),
        ("2000000", "`amount` must be at most 1000000.00 USD"),
    ] {
        assert_eq!(money(text, "USD").unwrap_err().to_string(), message);
    }
}

#[test]
fn amounts_format_with_the_currency_decimals() {
    for (minor, code, text) in [
        (10050, "USD", "100.50"),
        (1, "USD", "0.01"),
        (0, "USD", "0.00"),
        (10000, "EUR", "100.00"),
        (100, "JPY", "100"),
        (0, "JPY", "0"),
        (1005, "KWD", "1.005"),
        (1, "KWD", "0.001"),
        (i64::MAX, "USD", "92233720368547758.07"),
    ] {
        let money = Money::from_minor(minor, currency(code)).unwrap();
        assert_eq!(money.to_decimal_string(), text);
        assert_eq!(money.to_string(), format!("{text} {code}"));
    }
}

#[test]
fn from_minor_allows_zero_and_no_ceiling_but_not_negative() {
    assert_eq!(Money::from_minor(0, currency("USD")), Ok(Money::zero(currency("USD"))));
    assert!(Money::from_minor(i64::MAX, currency("USD")).is_ok());
    assert_eq!(
        Money::from_minor(-1, currency("USD")),
        Err(InvalidField::new("minor", FieldProblem::Negative))
    );
}

#[test]
fn arithmetic_stays_in_one_currency_and_never_goes_negative() {
    let usd = |minor| Money::from_minor(minor, currency("USD")).unwrap();
    let eur = Money::from_minor(100, currency("EUR")).unwrap();
    assert_eq!(usd(150).checked_add(usd(250)), Some(usd(400)));
    assert_eq!(usd(400).checked_sub(usd(150)), Some(usd(250)));
    assert_eq!(usd(150).checked_sub(usd(150)), Some(usd(0)));
    assert_eq!(usd(150).checked_sub(usd(151)), None);
    assert_eq!(usd(150).checked_add(eur), None);
    assert_eq!(usd(150).checked_sub(eur), None);
    assert_eq!(usd(i64::MAX).checked_add(usd(1)), None);
}

#[test]
fn money_travels_as_minor_units_and_currency() {
    let money = money("100.50", "USD").unwrap();
    let json = serde_json::to_string(&money).unwrap();
    assert_eq!(json, r#"{"minor":10050,"currency":"USD"}"#);
    assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
    assert_eq!(
        serde_json::from_str::<Money>(r#"{"minor":0,"currency":"JPY"}"#).unwrap(),
        Money::from_minor(0, currency("JPY")).unwrap()
    );
    for bad in [
        r#"{"minor":-1,"currency":"USD"}"#,
        r#"{"minor":1,"currency":"usd"}"#,
        r#"{"minor":1.5,"currency":"USD"}"#,
        r#"{"minor":"100","currency":"USD"}"#,
        r#"{"minor":1}"#,
        r#"{"currency":"USD"}"#,
    ] {
        assert!(serde_json::from_str::<Money>(bad).is_err(), "{bad}");
    }
    let err = serde_json::from_str::<Money>(r#"{"minor":-1,"currency":"USD"}"#).unwrap_err();
    assert!(err.to_string().contains("`minor` must not be negative"), "{err}");
}

#[cfg(feature = "schema")]
#[test]
fn schemas_list_the_codes_and_forbid_negative_amounts() {
    let currency = schemars::schema_for!(Currency);
    let codes = currency.get("enum").and_then(|codes| codes.as_array()).unwrap();
    assert_eq!(codes.len(), 39);
    assert!(codes.contains(&"KWD".into()));
    let money = serde_json::to_value(schemars::schema_for!(Money)).unwrap();
    assert_eq!(money["properties"]["minor"]["minimum"], 0);
    assert_eq!(money["properties"]["currency"]["$ref"], "#/$defs/Currency");
    let decimal = schemars::schema_for!(Decimal);
    assert_eq!(decimal.get("pattern").unwrap(), DECIMAL_PATTERN);
    assert_eq!(decimal.get("type").unwrap(), "string");
}

fn any_money() -> impl Strategy<Value = Money> {
    proptest::sample::select(Currency::all().collect::<Vec<_>>()).prop_flat_map(|currency| {
        (1..=Money::max(currency).minor()).prop_map(move |minor| Money::from_minor(minor, currency).unwrap())
    })
}

proptest! {
    #[test]
    fn any_accepted_amount_round_trips_through_its_text_with_its_trailing_zeros_or_without(
        money in any_money(),
        zeros in 0_usize..4,
    ) {
        let text = money.to_decimal_string();
        let fraction = text.split_once('.').map_or("", |(_, fraction)| fraction);
        let trimmed = text.trim_end_matches('0').trim_end_matches('.');
        let trimmed = if fraction.is_empty() { text.as_str() } else { trimmed };
        let padded = format!("{text}{}{}", if fraction.is_empty() { "." } else { "" }, "0".repeat(zeros));
        for text in [text.as_str(), trimmed, padded.trim_end_matches('.')] {
            let decimal = Decimal::parse("amount", text).unwrap();
            prop_assert_eq!(Money::from_decimal("amount", decimal, money.currency()), Ok(money), "{}", text);
        }
    }

    #[test]
    fn any_amount_round_trips_through_json(money in any_money()) {
        let json = serde_json::to_string(&money).unwrap();
        prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
    }

    #[test]
    fn decimal_text_round_trips_through_its_canonical_form(
        negative in any::<bool>(),
        integer in 0_u64..=u64::MAX,
        fraction in "[0-9]{0,12}",
    ) {
        let sign = if negative { "-" } else { "" };
        let text = if fraction.is_empty() { format!("{sign}{integer}") } else { format!("{sign}{integer}.{fraction}") };
        let decimal = Decimal::parse("amount", &text).unwrap();
        prop_assert_eq!(Decimal::parse("amount", &decimal.to_string()), Ok(decimal));
    }
}
