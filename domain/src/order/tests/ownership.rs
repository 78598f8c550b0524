//! An order belongs to a user: only the owner cancels it as a user, only the owner's purchase pays it.

use super::*;
use crate::testing::given;

#[test]
fn an_order_belongs_to_the_user_it_is_placed_for_with_or_without_items() {
    let seed = PlaceOrder {
        user_id: Some(USER),
        ..place(ID, "Jane")
    };
    let events = Order::decide(&State::NotPlaced, &Command::PlaceOrder(seed)).unwrap();
    assert!(matches!(
        &events[..],
        [Event::OrderPlaced(OrderPlaced {
            user_id: Some(USER),
            details: None,
            ..
        })]
    ));
    let state = events.iter().fold(State::NotPlaced, Order::evolve);
    assert!(matches!(state, State::Placed(PlacedOrder { owner: Some(USER), .. })));
    // Priced without a top-level user: the user of the details owns it.
    let events = Order::decide(&State::NotPlaced, &Command::PlaceOrder(place_priced(example_items()))).unwrap();
    assert!(matches!(
        &events[..],
        [Event::OrderPlaced(OrderPlaced {
            user_id: Some(USER),
            ..
        })]
    ));
}

fn cancel_by(acting_user: Uuid, expected_version: Option<u64>) -> Command {
    let Command::CancelOrder(cancel) = move_to(Cancelled, expected_version) else {
        unreachable!()
    };
    Command::CancelOrder(CancelOrder {
        acting_user: Some(acting_user),
        ..cancel
    })
}

#[test]
fn only_the_owner_cancels_as_a_user_and_staff_cancel_any_order() {
    given::<Order>([placed_priced(), settled(Paid, PURCHASE)])
        .when(cancel_by(OTHER_USER, None))
        .then_rejected(Rejection::NotOwner { order_id: ID });
    // Refused before the version check, whose answer would tell the order exists.
    given::<Order>([placed_priced()])
        .when(cancel_by(OTHER_USER, Some(7)))
        .then_rejected(Rejection::NotOwner { order_id: ID });
    given::<Order>([placed_priced(), settled(Paid, PURCHASE)])
        .when(cancel_by(USER, None))
        .then([cancelled_refunding()]);
    given::<Order>([placed_priced()])
        .when(move_to(Cancelled, None))
        .then([moved(Cancelled)]);
    // An order placed before orders had owners is cancelled by staff only.
    given::<Order>([placed(&place(ID, "Jane"))])
        .when(cancel_by(USER, None))
        .then_rejected(Rejection::NotOwner { order_id: ID });
    // A missing order is missing, whoever asks.
    given::<Order>([])
        .when(cancel_by(USER, None))
        .then_rejected(Rejection::NotFound { order_id: ID });
}

fn paid_by(payer: Option<Uuid>, command: Command) -> Command {
    match command {
        Command::RecordPayment(payment) => Command::RecordPayment(RecordPayment { payer, ..payment }),
        Command::RecordPaymentFailure(failure) => {
            Command::RecordPaymentFailure(RecordPaymentFailure { payer, ..failure })
        }
        other => other,
    }
}

#[test]
fn only_a_purchase_of_the_owner_settles_the_payment_of_an_order() {
    // Another user's purchase naming the order neither pays it nor fails its payment…
    given::<Order>([placed_priced()])
        .when(paid_by(Some(OTHER_USER), pay(PURCHASE, usd(TOTAL))))
        .then_rejected(Rejection::NotOwner { order_id: ID });
    given::<Order>([placed_priced()])
        .when(paid_by(Some(OTHER_USER), settle(Failed, PURCHASE)))
        .then_rejected(Rejection::NotOwner { order_id: ID });
    // …before any other check that would tell what state the order is in.
    given::<Order>([placed_priced(), settled(Paid, PURCHASE)])
        .when(paid_by(Some(OTHER_USER), pay(OTHER_PURCHASE, usd(TOTAL))))
        .then_rejected(Rejection::NotOwner { order_id: ID });
    given::<Order>([placed_priced()])
        .when(paid_by(
            Some(OTHER_USER),
            Command::RecordPayment(RecordPayment {
                expected_version: Some(7),
                ..match pay(PURCHASE, usd(TOTAL)) {
                    Command::RecordPayment(payment) => payment,
                    _ => unreachable!(),
                }
            }),
        ))
        .then_rejected(Rejection::NotOwner { order_id: ID });
    // The owner's own purchase pays, or fails to pay, as always.
    given::<Order>([placed_priced()])
        .when(paid_by(Some(USER), pay(PURCHASE, usd(TOTAL))))
        .then([settled(Paid, PURCHASE)]);
    given::<Order>([placed_priced()])
        .when(paid_by(Some(USER), settle(Failed, PURCHASE)))
        .then([settled(Failed, PURCHASE)]);
    // A purchase whose events did not name the buyer is taken as before.
    given::<Order>([placed_priced()])
        .when(paid_by(None, pay(PURCHASE, usd(TOTAL))))
        .then([settled(Paid, PURCHASE)]);
    given::<Order>([placed_priced()])
        .when(paid_by(None, settle(Failed, PURCHASE)))
        .then([settled(Failed, PURCHASE)]);
    // So is an order placed before orders had owners.
    let Event::OrderPlaced(priced) = placed_priced() else {
        unreachable!()
    };
    let ownerless = Event::OrderPlaced(OrderPlaced {
        user_id: None,
        ..priced
    });
    given::<Order>([ownerless])
        .when(paid_by(Some(OTHER_USER), pay(PURCHASE, usd(TOTAL))))
        .then([settled(Paid, PURCHASE)]);
}
