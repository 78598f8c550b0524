//! Payments, failed payments and refunds of an order.

use super::*;
use crate::testing::given;

#[test]
fn a_payment_of_exactly_the_total_pays_the_order() {
    given::<Order>(history(Pending))
        .when(pay(PURCHASE, usd(TOTAL)))
        .then([settled(Paid, PURCHASE)]);
    // A payment may arrive at any point of the lifecycle before cancellation.
    given::<Order>(history(Delivered))
        .when(pay(PURCHASE, usd(TOTAL)))
        .then([settled(Paid, PURCHASE)]);
    let mut events = history(Pending);
    events.push(settled(Paid, PURCHASE));
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
    events.push(settled(Failed, PURCHASE));
    assert_eq!(Order::fold(&events).payment_status(), Some(PaymentStatus::Failed));
    given::<Order>(events.clone())
        .when(settle(Failed, OTHER_PURCHASE))
        .then([settled(Failed, OTHER_PURCHASE)]);
    given::<Order>(events)
        .when(pay(OTHER_PURCHASE, usd(TOTAL)))
        .then([settled(Paid, OTHER_PURCHASE)]);
}

#[test]
fn a_paid_order_takes_no_second_payment_or_failure() {
    let mut events = history(Pending);
    events.push(settled(Paid, PURCHASE));
    for command in [pay(OTHER_PURCHASE, usd(TOTAL)), settle(Failed, OTHER_PURCHASE)] {
        given::<Order>(events.clone())
            .when(command)
            .then_rejected(Rejection::IllegalPaymentTransition {
                order_id: ID,
                payment_status: PaymentStatus::Paid,
                allowed: vec![PaymentStatus::Refunded],
            });
    }
}

fn returned(purchase_id: Uuid, reason: &str, amount: Money) -> Event {
    Event::OrderPaymentFailed(OrderPaymentFailed {
        order_id: ID,
        purchase_id,
        reason: PaymentFailureReason::parse(reason).unwrap(),
        amount: Some(amount),
        failed_at: t(6),
    })
}

#[test]
fn payments_are_recorded_in_every_status_but_cancelled_and_refunds_in_every_status() {
    for status in OrderStatus::ALL {
        for (command, event) in [
            (pay(PURCHASE, usd(TOTAL)), settled(Paid, PURCHASE)),
            (settle(Failed, PURCHASE), settled(Failed, PURCHASE)),
        ] {
            let scenario = given::<Order>(history(status)).when(command.clone());
            match command {
                Command::RecordPayment(_) if status == Cancelled => {
                    scenario.then([returned(PURCHASE, ORDER_CANCELLED, usd(TOTAL))])
                }
                _ if status == Cancelled => scenario.then_rejected(Rejection::Cancelled { order_id: ID }),
                _ => scenario.then([event]),
            }
        }
        let mut events = history(status);
        events.insert(1, settled(Paid, PURCHASE));
        given::<Order>(events)
            .when(settle(Refunded, PURCHASE))
            .then([settled(Refunded, PURCHASE)]);
    }
}

#[test]
fn a_cancelled_order_keeps_no_payment_and_says_why() {
    // The money is recorded with the reason, for the reactor to return; the payment status fails.
    for amount in [usd(TOTAL), usd(TOTAL - 1)] {
        given::<Order>(history(Cancelled))
            .when(pay(PURCHASE, amount))
            .then([returned(PURCHASE, ORDER_CANCELLED, amount)]);
    }
    let mut events = history(Cancelled);
    events.push(returned(PURCHASE, ORDER_CANCELLED, usd(TOTAL)));
    let state = Order::fold(&events);
    assert_eq!(state.payment_status(), Some(PaymentStatus::Failed));
    assert_eq!(state.status(), Some(Cancelled));
    // Even a second purchase of an order paid, cancelled and refunded goes back.
    let mut refunded_history = history(Pending);
    refunded_history.push(settled(Paid, PURCHASE));
    refunded_history.extend(history(Cancelled).into_iter().skip(1));
    refunded_history.push(settled(Refunded, PURCHASE));
    given::<Order>(refunded_history.clone())
        .when(pay(OTHER_PURCHASE, usd(TOTAL)))
        .then([returned(OTHER_PURCHASE, ORDER_CANCELLED, usd(TOTAL))]);
    let mut after = refunded_history;
    after.push(returned(OTHER_PURCHASE, ORDER_CANCELLED, usd(TOTAL)));
    assert_eq!(
        Order::fold(&after).payment_status(),
        Some(PaymentStatus::Refunded),
        "a returned payment leaves a refunded order refunded"
    );
    // A decline took no money: nothing to record.
    given::<Order>(history(Cancelled))
        .when(settle(Failed, PURCHASE))
        .then_rejected(Rejection::Cancelled { order_id: ID });
}

#[test]
fn an_order_without_items_has_nothing_to_pay() {
    let command = place(ID, "John Doe");
    given::<Order>([placed(&command)])
        .when(pay(PURCHASE, usd(TOTAL)))
        .then_rejected(Rejection::NotPriced { order_id: ID });
    // A failure is still recorded as it happened.
    given::<Order>([placed(&command)])
        .when(settle(Failed, PURCHASE))
        .then([settled(Failed, PURCHASE)]);
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
            vec![settled(Failed, PURCHASE)],
            PaymentStatus::Failed,
            vec![PaymentStatus::Paid, PaymentStatus::Failed],
        ),
        (
            vec![settled(Paid, PURCHASE), settled(Refunded, PURCHASE)],
            PaymentStatus::Refunded,
            vec![],
        ),
    ] {
        let mut events = history(Pending);
        events.extend(payments);
        given::<Order>(events)
            .when(settle(Refunded, PURCHASE))
            .then_rejected(Rejection::IllegalPaymentTransition {
                order_id: ID,
                payment_status,
                allowed,
            });
    }
    let mut events = history(Delivered);
    events.push(settled(Paid, PURCHASE));
    given::<Order>(events.clone())
        .when(settle(Refunded, PURCHASE))
        .then([settled(Refunded, PURCHASE)]);
    given::<Order>(events)
        .when(settle(Refunded, OTHER_PURCHASE))
        .then_rejected(Rejection::WrongPurchase {
            order_id: ID,
            purchase_id: OTHER_PURCHASE,
            paid_with: PURCHASE,
        });
}
