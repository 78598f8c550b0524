//! The pricing policy: line items, subtotal, tax, shipping and total, and their errors.

use super::*;
use proptest::prelude::*;

fn currency(code: &str) -> Currency {
    Currency::parse("currency", code).unwrap()
}

fn money(minor: i64, code: &str) -> Money {
    Money::from_minor(minor, currency(code)).unwrap()
}

fn item(sku: &str, quantity: i64, unit_minor: i64, code: &str) -> LineItem {
    LineItem {
        sku: Sku::parse(sku).unwrap(),
        name: ItemName::parse("Widget").unwrap(),
        quantity: Quantity::new(quantity).unwrap(),
        unit_price: money(unit_minor, code),
    }
}

fn n(value: u32) -> NonZeroU32 {
    NonZeroU32::new(value).unwrap()
}

#[test]
fn half_even_rounds_ties_to_even_at_both_signs_and_the_extremes() {
    for (numerator, denominator, rounded) in [
        (8050, 100, 80),
        (8150, 100, 82),
        (8149, 100, 81),
        (5, 2, 2),
        (7, 2, 4),
        (-5, 2, -2),
        (-8152, 100, -82),
        (i128::MAX, 1, i128::MAX),
        (i128::MAX, 2, i128::MAX / 2 + 1),
        (i128::MIN, 2, i128::MIN / 2),
    ] {
        assert_eq!(
            round_half_even(numerator, n(denominator)),
            rounded,
            "{numerator}/{denominator}"
        );
    }
}

proptest! {
    /// The definition itself: the nearest integer to the quotient, the even one of two as near.
    #[test]
    fn half_even_is_the_nearest_integer_and_the_even_one_on_a_tie(
        numerator in any::<i64>(),
        denominator in 1u32..=10_000,
    ) {
        let (numerator, divisor) = (i128::from(numerator), i128::from(denominator));
        let rounded = round_half_even(numerator, n(denominator));
        let twice_the_error = 2 * (numerator - rounded * divisor).abs();
        prop_assert!(twice_the_error <= divisor, "{numerator}/{denominator} rounded to {rounded}");
        if twice_the_error == divisor {
            prop_assert_eq!(rounded % 2, 0, "{}/{} is a tie", numerator, denominator);
        }
    }
}

#[test]
fn the_worked_example_prices_to_42_04() {
    let totals = price(
        &[item("SKU-1", 2, 1234, "USD"), item("SKU-2", 1, 500, "USD")],
        currency("USD"),
    )
    .unwrap();
    assert_eq!(
        totals,
        Totals {
            subtotal: money(2968, "USD"),
            tax: money(237, "USD"),
            shipping: money(999, "USD"),
            total: money(4204, "USD"),
        }
    );
    assert_eq!(totals.total.to_string(), "42.04 USD");
}

#[test]
fn tax_is_eight_percent_rounded_half_even_to_the_minor_unit() {
    for (subtotal, expected) in [
        (1006, 80),  // 80.48
        (1019, 82),  // 81.52
        (2968, 237), // 237.44
        (0, 0),
        (1, 0), // 0.08
        (6, 0), // 0.48
        (7, 1), // 0.56
        (10_000, 800),
        (12_345, 988), // 987.6
    ] {
        assert_eq!(tax(money(subtotal, "USD")), money(expected, "USD"), "{subtotal}");
    }
    // Whole units for a currency without decimals, thousandths for one with three.
    assert_eq!(tax(money(1006, "JPY")), money(80, "JPY"));
    assert_eq!(tax(money(1_019, "KWD")), money(82, "KWD"));
    // No overflow even at the very top of the range: 8 % of i64::MAX.
    assert_eq!(
        tax(money(i64::MAX, "USD")).minor(),
        737_869_762_948_382_065 // 737869762948382064.56
    );
}

#[test]
fn an_eight_percent_tax_never_lands_on_a_tie() {
    // 8·s ≡ 50 (mod 100) has no solution, so half-even and half-up agree for this rate.
    assert!((0..100_i128).all(|s| (s * i128::from(TAX_RATE_PERCENT)) % 100 != 50));
}

#[test]
fn shipping_is_9_99_major_units_converted_half_even() {
    assert_eq!(shipping_fee(currency("USD")), money(999, "USD"));
    assert_eq!(shipping_fee(currency("EUR")), money(999, "EUR"));
    assert_eq!(shipping_fee(currency("KWD")), money(9_990, "KWD"));
    assert_eq!(shipping_fee(currency("JPY")), money(10, "JPY"));
}

#[test]
fn shipping_is_free_from_100_major_units() {
    assert_eq!(free_shipping_threshold(currency("USD")), money(10_000, "USD"));
    assert_eq!(free_shipping_threshold(currency("JPY")), money(100, "JPY"));
    assert_eq!(free_shipping_threshold(currency("KWD")), money(100_000, "KWD"));
    assert_eq!(shipping(money(9_999, "USD")), money(999, "USD"));
    assert_eq!(shipping(money(10_000, "USD")), money(0, "USD"));
    assert_eq!(shipping(money(10_001, "USD")), money(0, "USD"));
    assert_eq!(shipping(money(99, "JPY")), money(10, "JPY"));
    assert_eq!(shipping(money(100, "JPY")), money(0, "JPY"));
}

#[test]
fn an_order_of_exactly_100_ships_free() {
    let totals = price(&[item("A", 4, 2500, "USD")], currency("USD")).unwrap();
    assert_eq!(
        totals,
        Totals {
            subtotal: money(10_000, "USD"),
            tax: money(800, "USD"),
            shipping: money(0, "USD"),
            total: money(10_800, "USD"),
        }
    );
    let just_below = price(&[item("A", 1, 9_999, "USD")], currency("USD")).unwrap();
    assert_eq!(just_below.shipping, money(999, "USD"));
    assert_eq!(just_below.total, money(9_999 + 800 + 999, "USD")); // tax 799.92 → 800
}

#[test]
fn an_order_in_yen_is_priced_in_whole_yen() {
    let totals = price(&[item("A", 3, 33, "JPY")], currency("JPY")).unwrap();
    // 99 yen: tax 7.92 → 8, shipping 10.
    assert_eq!(
        (totals.subtotal, totals.tax, totals.shipping, totals.total),
        (money(99, "JPY"), money(8, "JPY"), money(10, "JPY"), money(117, "JPY"))
    );
}

#[test]
fn free_items_are_allowed() {
    let totals = price(&[item("GIFT", 1, 0, "USD")], currency("USD")).unwrap();
    assert_eq!(totals.total, money(999, "USD"));
}

#[test]
fn an_order_needs_items_in_its_own_currency() {
    assert_eq!(price(&[], currency("USD")), Err(PricingError::NoItems));
    let err = price(&[item("A", 1, 100, "USD"), item("B", 1, 100, "EUR")], currency("USD")).unwrap_err();
    assert_eq!(
        err,
        PricingError::CurrencyMismatch {
            index: 1,
            sku: Sku::parse("B").unwrap(),
            expected: currency("USD"),
            found: currency("EUR"),
        }
    );
    assert_eq!(
        err.to_string(),
        "item 1 (B) is priced in EUR, not in the order's currency USD"
    );
}

#[test]
fn amounts_too_large_to_hold_are_refused_not_wrapped() {
    let huge = i64::MAX / 2 + 1;
    assert_eq!(
        price(&[item("A", 1, 1, "USD"), item("BIG", 2, huge, "USD")], currency("USD")),
        Err(PricingError::LineAmountOverflow {
            index: 1,
            sku: Sku::parse("BIG").unwrap()
        })
    );
    assert_eq!(
        price(&[item("A", 1, huge, "USD"), item("B", 1, huge, "USD")], currency("USD")),
        Err(PricingError::SubtotalOverflow)
    );
    assert_eq!(
        price(&[item("A", 1, i64::MAX - 10, "USD")], currency("USD")),
        Err(PricingError::TotalOverflow)
    );
}

#[test]
fn pricing_errors_travel_tagged() {
    let json = serde_json::to_string(&PricingError::NoItems).unwrap();
    assert_eq!(json, r#"{"type":"no_items"}"#);
    let mismatch = PricingError::CurrencyMismatch {
        index: 0,
        sku: Sku::parse("A").unwrap(),
        expected: currency("USD"),
        found: currency("JPY"),
    };
    let json = serde_json::to_string(&mismatch).unwrap();
    assert_eq!(
        json,
        r#"{"type":"currency_mismatch","index":0,"sku":"A","expected":"USD","found":"JPY"}"#
    );
    assert_eq!(serde_json::from_str::<PricingError>(&json).unwrap(), mismatch);
}

#[test]
fn skus_are_short_codes_kept_as_written() {
    for ok in ["A", "abc-123", "SKU_1.2", &"x".repeat(64)] {
        assert_eq!(Sku::parse(ok).unwrap().as_str(), ok);
    }
    assert_eq!(
        Sku::parse("").unwrap_err(),
        InvalidField::new("sku", FieldProblem::Blank)
    );
    assert_eq!(
        Sku::parse(&"x".repeat(65)).unwrap_err(),
        InvalidField::new("sku", FieldProblem::TooLong { max: 64, actual: 65 })
    );
    for bad in [" A", "A ", "A B", "A/B", "é", "A+1", "１"] {
        assert_eq!(
            Sku::parse(bad).unwrap_err(),
            InvalidField::new("sku", FieldProblem::InvalidCharacters { allowed: Sku::ALLOWED }),
            "{bad:?}"
        );
    }
    assert!(serde_json::from_str::<Sku>(r#""A B""#).is_err());
}

#[test]
fn quantities_run_from_1_to_1000() {
    assert_eq!(Quantity::new(1).unwrap().get(), 1);
    assert_eq!(Quantity::new(1_000).unwrap().get(), 1_000);
    for bad in [0, -1, 1_001, i64::MAX, i64::MIN, i64::from(u32::MAX) + 1] {
        assert_eq!(
            Quantity::new(bad).unwrap_err(),
            InvalidField::new("quantity", FieldProblem::OutOfRange { min: 1, max: 1_000 }),
            "{bad}"
        );
    }
    assert_eq!(serde_json::to_string(&Quantity::new(3).unwrap()).unwrap(), "3");
    assert_eq!(serde_json::from_str::<Quantity>("3").unwrap().get(), 3);
    let err = serde_json::from_str::<Quantity>("0").unwrap_err();
    assert!(err.to_string().contains("`quantity` must be from 1 to 1000"), "{err}");
    assert!(serde_json::from_str::<Quantity>("1.5").is_err());
    assert!(serde_json::from_str::<Quantity>(r#""3""#).is_err());
}

#[test]
fn line_items_and_totals_travel_as_plain_json() {
    let line = item("SKU-1", 2, 1234, "USD");
    let json = serde_json::to_string(&line).unwrap();
    assert_eq!(
        json,
        r#"{"sku":"SKU-1","name":"Widget","quantity":2,"unit_price":{"minor":1234,"currency":"USD"}}"#
    );
    assert_eq!(serde_json::from_str::<LineItem>(&json).unwrap(), line);
    let totals = price(&[line], currency("USD")).unwrap();
    let json = serde_json::to_string(&totals).unwrap();
    assert_eq!(serde_json::from_str::<Totals>(&json).unwrap(), totals);
}

fn any_currency() -> impl Strategy<Value = Currency> {
    proptest::sample::select(Currency::all().collect::<Vec<_>>())
}

fn any_item(currency: Currency) -> impl Strategy<Value = LineItem> {
    (
        "[A-Za-z0-9._-]{1,64}",
        1..=i64::from(Quantity::MAX),
        0..=Money::max(currency).minor(),
    )
        .prop_map(move |(sku, quantity, unit)| LineItem {
            sku: Sku::parse(&sku).unwrap(),
            name: ItemName::parse("Item").unwrap(),
            quantity: Quantity::new(quantity).unwrap(),
            unit_price: Money::from_minor(unit, currency).unwrap(),
        })
}

fn any_order() -> impl Strategy<Value = (Currency, Vec<LineItem>)> {
    any_currency().prop_flat_map(|currency| (Just(currency), proptest::collection::vec(any_item(currency), 1..20)))
}

/// Small amounts, so that subtotals land on both sides of the shipping threshold.
fn any_small_order() -> impl Strategy<Value = (Currency, Vec<LineItem>)> {
    any_currency().prop_flat_map(|currency| {
        let item = (1..=5_i64, 0..=3 * minor_per_major_i64(currency) * 10).prop_map(move |(q, unit)| LineItem {
            sku: Sku::parse("S").unwrap(),
            name: ItemName::parse("Item").unwrap(),
            quantity: Quantity::new(q).unwrap(),
            unit_price: Money::from_minor(unit, currency).unwrap(),
        });
        (Just(currency), proptest::collection::vec(item, 1..6))
    })
}

fn minor_per_major_i64(currency: Currency) -> i64 {
    i64::try_from(minor_per_major(currency)).unwrap()
}

proptest! {
    #[test]
    fn total_is_subtotal_plus_tax_plus_shipping((currency, items) in any_order()) {
        let totals = price(&items, currency).unwrap();
        prop_assert_eq!(
            totals.total.minor(),
            totals.subtotal.minor() + totals.tax.minor() + totals.shipping.minor()
        );
        for amount in [totals.subtotal, totals.tax, totals.shipping, totals.total] {
            prop_assert_eq!(amount.currency(), currency);
        }
        let expected: i64 = items.iter().map(|i| i.unit_price.minor() * i64::from(i.quantity.get())).sum();
        prop_assert_eq!(totals.subtotal.minor(), expected);
    }

    #[test]
    fn tax_is_within_half_a_minor_unit_of_the_exact_rate(subtotal in 0..=i64::MAX, code in any_currency()) {
        let tax = tax(Money::from_minor(subtotal, code).unwrap());
        // |tax − subtotal × 8 / 100| ≤ 1/2  ⇔  |100 × tax − 8 × subtotal| ≤ 50
        let error = 100 * i128::from(tax.minor()) - i128::from(TAX_RATE_PERCENT) * i128::from(subtotal);
        prop_assert!(error.abs() <= 50, "subtotal {} tax {}", subtotal, tax.minor());
    }

    #[test]
    fn shipping_is_zero_iff_the_subtotal_reaches_the_threshold((currency, items) in any_small_order()) {
        let totals = price(&items, currency).unwrap();
        let free = totals.subtotal.minor() >= free_shipping_threshold(currency).minor();
        prop_assert_eq!(totals.shipping.minor() == 0, free);
        if !free {
            prop_assert_eq!(totals.shipping, shipping_fee(currency));
        }
    }

    #[test]
    fn adding_an_item_never_lowers_the_subtotal(
        (currency, items, extra) in any_order().prop_flat_map(|(currency, items)| {
            (Just(currency), Just(items), any_item(currency))
        })
    ) {
        let before = subtotal(&items, currency).unwrap();
        let mut more = items.clone();
        more.push(extra);
        let after = subtotal(&more, currency).unwrap();
        prop_assert!(after.minor() >= before.minor());
    }
}
