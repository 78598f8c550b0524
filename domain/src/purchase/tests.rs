//! Purchase scenarios: requested, authorized or declined once, refunded up to what was paid.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::*;
use crate::card::MaskedCard;
use crate::card::{CardExpiry, CardNumber};
use crate::message::Message;
use crate::money::Currency;
use crate::money::{Decimal, Money};
use crate::testing::given;
use crate::Decider;
use proptest::prelude::*;

const ID: Uuid = Uuid::from_u128(1);

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::parse("currency", "USD").unwrap()).unwrap()
}

fn at(time: &str) -> DateTime<Utc> {
    time.parse().unwrap()
}

fn requested(minor: i64) -> Event {
    let number = CardNumber::parse("card_number", "4242424242424242").unwrap();
    Event::PurchaseRequested(PurchaseRequested {
        purchase_id: ID,
        user_id: Uuid::from_u128(2),
        username: Username::parse("first_user").unwrap(),
        amount: usd(minor),
        payment_method: PaymentMethod::CreditCard,
        card: MaskedCard::new(
            &number,
            CardExpiry::parse("card_expiry", "12/30").unwrap(),
            "f".repeat(64),
        ),
        payment_token: "tok_sandbox_approve_1".to_owned(),
        order_id: None,
        transaction_date: at("2025-01-19T15:04:05Z"),
        requested_at: at("2025-01-19T15:04:06Z"),
    })
}

fn authorized() -> Event {
    Event::PurchaseAuthorized(PurchaseAuthorized {
        purchase_id: ID,
        authorization_id: "auth_1".to_owned(),
        authorized_at: at("2025-01-19T15:04:07Z"),
        order_id: None,
        amount: Some(usd(10050)),
        user_id: Some(Uuid::from_u128(2)),
    })
}

fn refund(amount: &str) -> Command {
    refund_as(3, amount)
}

fn refund_as(refund_id: u128, amount: &str) -> Command {
    Command::RefundPurchase(RefundPurchase {
        purchase_id: ID,
        refund_id: Uuid::from_u128(refund_id),
        amount: Decimal::parse("amount", amount).unwrap(),
        reason: RefundReason::parse("damaged").unwrap(),
        requested_at: at("2025-01-20T10:00:00Z"),
    })
}

fn refund_requested(minor: i64) -> Event {
    refund_requested_as(3, minor)
}

fn refund_requested_as(refund_id: u128, minor: i64) -> Event {
    refund_event(PURCHASE_REFUND_REQUESTED_V1, refund_id, minor)
}

fn refunded(minor: i64) -> Event {
    refunded_as(3, minor)
}

fn refunded_as(refund_id: u128, minor: i64) -> Event {
    refund_event(PURCHASE_REFUNDED_V1, refund_id, minor)
}

/// Refund `refund_id` of `minor` for damaged goods, as accepted or as paid back by the gateway.
/// Both are read from one set of fields, each event type taking its own, so the two events of one
/// refund always agree.
fn refund_event(message_type: &str, refund_id: u128, minor: i64) -> Event {
    let fields = serde_json::json!({
        "purchase_id": ID,
        "refund_id": Uuid::from_u128(refund_id),
        "amount": usd(minor),
        "reason": "damaged",
        "requested_at": "2025-01-20T10:00:00Z",
        "refunded_at": "2025-01-20T10:00:05Z",
    });
    Event::decode(message_type, fields.to_string().as_bytes()).unwrap_or_else(|err| panic!("{message_type}: {err}"))
}

fn record_refund(refund_id: u128) -> Command {
    Command::RecordRefund(RecordRefund {
        purchase_id: ID,
        refund_id: Uuid::from_u128(refund_id),
        refunded_at: at("2025-01-20T10:00:05Z"),
    })
}

fn authorize() -> Command {
    Command::RecordAuthorization(RecordAuthorization {
        purchase_id: ID,
        authorization_id: "auth_1".to_owned(),
        authorized_at: at("2025-01-19T15:04:07Z"),
    })
}

#[test]
fn a_requested_purchase_is_authorized_once() {
    given::<Purchase>([requested(10050)])
        .when(authorize())
        .then([authorized()]);
    given::<Purchase>([requested(10050), authorized()])
        .when(authorize())
        .then_rejected(Rejection::AlreadySettled {
            purchase_id: ID,
            status: PurchaseStatus::Authorized,
        });
}

#[test]
fn verdicts_name_the_buyer_and_v1_verdicts_decode_without_one() {
    let declined = Event::PurchaseDeclined(PurchaseDeclined {
        purchase_id: ID,
        reason: "card_declined".to_owned(),
        declined_at: at("2025-01-19T15:04:07Z"),
        order_id: None,
        user_id: Some(Uuid::from_u128(2)),
    });
    given::<Purchase>([requested(10050)])
        .when(Command::RecordDecline(RecordDecline {
            purchase_id: ID,
            reason: "card_declined".to_owned(),
            declined_at: at("2025-01-19T15:04:07Z"),
        }))
        .then([declined.clone()]);
    for event in [authorized(), declined] {
        assert!(event.message_type().ends_with(".v2"));
        assert_eq!(Event::decode(event.message_type(), &event.encode()).unwrap(), event);
    }
    let v1 = br#"{"purchase_id":"00000000-0000-0000-0000-000000000001","authorization_id":"auth_1","authorized_at":"2025-01-19T15:04:07Z","order_id":"00000000-0000-0000-0000-000000000005","amount":{"minor":10050,"currency":"USD"}}"#;
    let Event::PurchaseAuthorized(upcast) = Event::decode(PURCHASE_AUTHORIZED_V1, v1).unwrap() else {
        panic!("not an authorization");
    };
    assert_eq!(
        (upcast.user_id, upcast.order_id, upcast.amount),
        (None, Some(Uuid::from_u128(5)), Some(usd(10050)))
    );
    let v1 = br#"{"purchase_id":"00000000-0000-0000-0000-000000000001","reason":"card_declined","declined_at":"2025-01-19T15:04:07Z"}"#;
    let Event::PurchaseDeclined(upcast) = Event::decode(PURCHASE_DECLINED_V1, v1).unwrap() else {
        panic!("not a decline");
    };
    assert_eq!(upcast.user_id, None);
}

#[test]
fn a_verdict_for_an_unknown_purchase_is_refused() {
    given::<Purchase>([])
        .when(authorize())
        .then_rejected(Rejection::NotFound { purchase_id: ID });
}

#[test]
fn refunds_are_read_in_the_purchase_currency_and_bounded_by_what_is_left() {
    given::<Purchase>([requested(10050), authorized()])
        .when(refund("40"))
        .then([refund_requested(4000)]);
    given::<Purchase>([requested(10050), authorized(), refund_requested(4000), refunded(4000)])
        .when(refund("60.51"))
        .then_rejected(Rejection::RefundExceedsRefundable {
            requested: "60.51".to_owned(),
            refundable: "60.50".to_owned(),
        });
    given::<Purchase>([requested(10050), authorized()])
        .when(refund("1.005"))
        .then_rejected(Rejection::InvalidRefundAmount {
            problem: "has more decimals than USD allows (2)".to_owned(),
        });
}

#[test]
fn a_requested_refund_is_reserved_until_the_gateway_pays_it_back() {
    let pending = [requested(10050), authorized(), refund_requested(4000)];
    given::<Purchase>(pending.clone())
        .when(refund_as(4, "60.51"))
        .then_rejected(Rejection::RefundExceedsRefundable {
            requested: "60.51".to_owned(),
            refundable: "60.50".to_owned(),
        });
    assert_eq!(
        Purchase::fold(&pending).status(),
        Some(PurchaseStatus::Authorized),
        "nothing is refunded before the gateway paid it back"
    );
    given::<Purchase>(pending.clone())
        .when(refund("1"))
        .then_rejected(Rejection::RefundAlreadyRequested {
            purchase_id: ID,
            refund_id: Uuid::from_u128(3),
        });
    given::<Purchase>(pending.clone())
        .when(record_refund(3))
        .then([refunded(4000)]);
}

#[test]
fn a_refund_is_recorded_once_and_only_when_requested() {
    given::<Purchase>([requested(10050), authorized(), refund_requested(4000), refunded(4000)])
        .when(record_refund(3))
        .then_rejected(Rejection::RefundNotRequested {
            purchase_id: ID,
            refund_id: Uuid::from_u128(3),
        });
    given::<Purchase>([requested(10050), authorized()])
        .when(record_refund(3))
        .then_rejected(Rejection::RefundNotRequested {
            purchase_id: ID,
            refund_id: Uuid::from_u128(3),
        });
    given::<Purchase>([])
        .when(record_refund(3))
        .then_rejected(Rejection::NotFound { purchase_id: ID });
}

#[test]
fn a_log_of_refunds_without_requests_folds_as_before() {
    let before = Purchase::fold([&requested(10050), &authorized(), &refunded_as(7, 4000)]);
    let after = Purchase::fold([
        &requested(10050),
        &authorized(),
        &refund_requested_as(7, 4000),
        &refunded_as(7, 4000),
    ]);
    assert_eq!(before, after);
    assert_eq!(before.status(), Some(PurchaseStatus::Refunded));
    let stored = serde_json::to_value(&before).unwrap();
    assert!(
        stored["Authorized"].get("pending").is_none(),
        "a state without pending refunds is stored as before: {stored}"
    );
}

#[test]
fn only_an_authorized_purchase_can_be_refunded() {
    given::<Purchase>([requested(10050)])
        .when(refund("1"))
        .then_rejected(Rejection::NotRefundable {
            purchase_id: ID,
            status: PurchaseStatus::Requested,
        });
}

#[test]
fn status_follows_the_facts() {
    assert_eq!(
        Purchase::fold([&requested(100)]).status(),
        Some(PurchaseStatus::Requested)
    );
    assert_eq!(
        Purchase::fold([&requested(100), &authorized()]).status(),
        Some(PurchaseStatus::Authorized)
    );
    assert_eq!(
        Purchase::fold([&requested(100), &authorized(), &refunded(1)]).status(),
        Some(PurchaseStatus::Refunded)
    );
}

proptest! {
    #[test]
    fn accepted_refunds_never_add_up_to_more_than_the_amount(
        amount in 1i64..100_000,
        attempts in proptest::collection::vec(1i64..60_000, 1..20),
    ) {
        let mut state = Purchase::fold([&requested(amount), &authorized()]);
        let mut total = 0;
        for (n, minor) in (10..).zip(attempts) {
            let decimal = usd(minor).to_decimal_string();
            if let Ok(events) = Purchase::decide(&state, &refund_as(n, &decimal)) {
                total += minor;
                state = events.iter().fold(state, Purchase::evolve);
                // Every other refund is paid back before the next is asked for.
                if total % 2 == 0 {
                    let Some(Event::PurchaseRefundRequested(requested)) = events.first() else {
                        panic!("a refund is requested first");
                    };
                    let record = Command::RecordRefund(RecordRefund {
                        purchase_id: ID,
                        refund_id: requested.refund_id,
                        refunded_at: at("2025-01-20T10:00:05Z"),
                    });
                    let recorded = Purchase::decide(&state, &record).unwrap();
                    state = recorded.iter().fold(state, Purchase::evolve);
                }
            }
            prop_assert!(total <= amount);
        }
    }
}
