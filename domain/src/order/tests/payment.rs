//! Payments, failed payments and refunds of an order.

use super::*;
use crate::testing::given;

#[test]
fn a_payment_of_exactly_the_total_pays_the_order() {
    given::<Order>(history(Pending))
        .when(pay(PURCHASE, usd(TOTAL)))
        .then([paid(PURCHASE)]);
    // A payment may arrive at any point of the lifecycle before cancellation.
    given::<Order>(history(Delivered))
        .when(pay(PURCHASE, usd(TOTAL)))
        .then([paid(PURCHASE)]);
    let mut events = history(Pending);
    events.push(paid(PURCHASE));
    let state = Order::fold(&events);
    assert_eq!(state.payment_status(), Some(PaymentStatus::Paid));
    assert!(matches!(
        state,
        State::Placed(PlacedOrder {
            paid_with: Some(PURCHASE),
            ..
        })
    ));
}

#[test]
fn a_payment_of_another_amount_or_currency_is_a_failed_payment() {
    for amount in [usd(TOTAL - 1), usd(TOTAL + 1), money(TOTAL, "EUR")] {
        given::<Order>(history(Pending))
            .when(pay(PURCHASE, amount))
            .then([Event::OrderPaymentFailed(OrderPaymentFailed {
                order_id: ID,
                purchase_id: PURCHASE,
                reason: PaymentFailureReason::parse(AMOUNT_MISMATCH).unwrap(),
                amount: Some(amount),
                failed_at: t(6),
            })]);
    }
}

#[test]
fn a_failed_payment_may_be_retried() {
    let mut events = history(Pending);
    events.push(payment_failed(PURCHASE));
    assert_eq!(Order::fold(&events).payment_status(), Some(PaymentStatus::Failed));
    given::<Order>(events.clone())
        .when(fail(OTHER_PURCHASE))
        .then([payment_failed(OTHER_PURCHASE)]);
    given::<Order>(events)
        .when(pay(OTHER_PURCHASE, usd(TOTAL)))
        .then([paid(OTHER_PURCHASE)]);
}

#[test]
fn a_paid_order_takes_no_second_payment_or_failure() {
    let mut events = history(Pending);
    events.push(paid(PURCHASE));
    for command in [pay(OTHER_PURCHASE, usd(TOTAL)), fail(OTHER_PURCHASE)] {
        given::<Order>(events.clone())
            .when(command)
            .then_rejected(Rejection::IllegalPaymentTransition {
                order_id: ID,
                payment_status: PaymentStatus::Paid,
                allowed: vec![PaymentStatus::Refunded],
            });
    }
}

#[test]
fn payments_are_recorded_in_every_status_but_cancelled_and_refunds_in_every_status() {
    for status in OrderStatus::ALL {
        for (command, event) in [
            (pay(PURCHASE, usd(TOTAL)), paid(PURCHASE)),
            (fail(PURCHASE), payment_failed(PURCHASE)),
        ] {
            let scenario = given::<Order>(history(status)).when(command);
            if status == Cancelled {
                scenario.then_rejected(Rejection::Cancelled { order_id: ID });
            } else {
                scenario.then([event]);
            }
        }
        let mut events = history(status);
        events.insert(1, paid(PURCHASE));
        given::<Order>(events).when(refund(PURCHASE)).then([refunded(PURCHASE)]);
    }
}

#[test]
fn a_cancelled_order_takes_no_payment() {
    for command in [pay(PURCHASE, usd(TOTAL)), fail(PURCHASE)] {
        given::<Order>(history(Cancelled))
            .when(command)
            .then_rejected(Rejection::Cancelled { order_id: ID });
    }
}

#[test]
fn an_order_without_items_has_nothing_to_pay() {
    let command = place(ID, "John Doe");
    given::<Order>([placed(&command)])
        .when(pay(PURCHASE, usd(TOTAL)))
        .then_rejected(Rejection::NotPriced { order_id: ID });
    // A failure is still recorded as it happened.
    given::<Order>([placed(&command)])
        .when(fail(PURCHASE))
        .then([payment_failed(PURCHASE)]);
}

#[test]
fn only_a_paid_order_is_refunded() {
    for (payments, payment_status, allowed) in [
        (
            vec![],
            PaymentStatus::Pending,
            vec![PaymentStatus::Paid, PaymentStatus::Failed],
        ),
        (
            vec![payment_failed(PURCHASE)],
            PaymentStatus::Failed,
            vec![PaymentStatus::Paid, PaymentStatus::Failed],
        ),
        (
            vec![paid(PURCHASE), refunded(PURCHASE)],
            PaymentStatus::Refunded,
            vec![],
        ),
    ] {
        let mut events = history(Pending);
        events.extend(payments);
        given::<Order>(events)
            .when(refund(PURCHASE))
            .then_rejected(Rejection::IllegalPaymentTransition {
                order_id: ID,
                payment_status,
                allowed,
            });
    }
    let mut events = history(Delivered);
    events.push(paid(PURCHASE));
    given::<Order>(events.clone())
        .when(refund(PURCHASE))
        .then([refunded(PURCHASE)]);
    given::<Order>(events)
        .when(refund(OTHER_PURCHASE))
        .then_rejected(Rejection::WrongPurchase {
            order_id: ID,
            purchase_id: OTHER_PURCHASE,
            paid_with: PURCHASE,
        });
}
