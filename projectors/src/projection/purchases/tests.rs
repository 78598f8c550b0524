//! The fold of `purchases` and `user_spend`, on events built by hand: no Kafka, no PostgreSQL.

use super::*;
use crate::projection::{fold, logged, to_load};
use chrono::{DateTime, Utc};
use domain::card::{CardExpiry, CardNumber, MaskedCard};
use domain::money::{Currency, Money};
use domain::order::{self, OrderName, OrderPlaced};
use domain::purchase::{PaymentMethod, PurchaseRequested, Username};
use domain::{Event, Message};
use serde_json::json;

const USER: Uuid = Uuid::from_u128(0x1111);

/// Applies the batch's purchase events to `loaded` (the stored rows of the purchases it changes
/// without having requested them) and returns every row it touched with the spend it adds.
fn fold_purchases(loaded: HashMap<Uuid, PurchaseRow>, events: &[LoggedEvent]) -> Folded {
    let mut purchases = Purchases::default();
    let rows = fold(&mut purchases, loaded, events);
    purchases.folded(rows)
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::parse("currency", "USD").unwrap()).unwrap()
}

fn requested(purchase_id: Uuid, minor: i64, time: &str) -> LoggedEvent {
    let card = MaskedCard::new(
        &CardNumber::parse("card_number", "4242 4242 4242 4242").unwrap(),
        CardExpiry::parse("card_expiry", "12/30").unwrap(),
        "fp_3b5c".to_owned(),
    );
    logged(
        1,
        Event::Purchase(purchase::Event::PurchaseRequested(PurchaseRequested {
            purchase_id,
            user_id: USER,
            username: Username::parse("jdoe").unwrap(),
            amount: usd(minor),
            payment_method: PaymentMethod::CreditCard,
            card,
            payment_token: "tok_1".to_owned(),
            order_id: None,
            transaction_date: at(time),
            requested_at: at(time),
        })),
    )
}

/// The reactor's verdict on `purchase_id` at `time`: authorized as `auth_1`, or declined for
/// insufficient funds; read from its wire form, without the order, amount and buyer a verdict may
/// name.
fn verdict(purchase_id: Uuid, sequence: u64, status: PurchaseStatus, time: &str) -> LoggedEvent {
    let (message_type, mut fields) = match status {
        PurchaseStatus::Authorized => (
            purchase::PURCHASE_AUTHORIZED_V2,
            json!({"authorization_id": "auth_1", "authorized_at": time}),
        ),
        PurchaseStatus::Declined => (
            purchase::PURCHASE_DECLINED_V2,
            json!({"reason": "insufficient_funds", "declined_at": time}),
        ),
        other => panic!("{other:?} is not a verdict"),
    };
    fields["purchase_id"] = json!(purchase_id);
    let event = purchase::Event::decode(message_type, fields.to_string().as_bytes()).unwrap();
    logged(sequence, Event::Purchase(event))
}

/// Purchase `purchase_id` of `minor` cents, requested at 15:00 on 19 January 2025 and given its
/// verdict `status` (see [`verdict`]) at `settled_at`.
fn settled(purchase_id: Uuid, minor: i64, status: PurchaseStatus, settled_at: &str) -> [LoggedEvent; 2] {
    [
        requested(purchase_id, minor, "2025-01-19T15:00:00Z"),
        verdict(purchase_id, 2, status, settled_at),
    ]
}

/// A refund of `minor` cents of `purchase_id` at `time` for damage, as `message_type` (requested,
/// or paid back: `PurchaseRefunded`); read from its wire form, without the order it may name.
fn refund(message_type: &str, purchase_id: Uuid, sequence: u64, minor: i64, time: &str) -> LoggedEvent {
    let mut fields = json!({
        "purchase_id": purchase_id,
        "refund_id": Uuid::new_v4(),
        "amount": usd(minor),
        "reason": "damaged",
    });
    let at = match message_type {
        purchase::PURCHASE_REFUNDED_V1 => "refunded_at",
        _ => "requested_at",
    };
    fields[at] = json!(time);
    let event = purchase::Event::decode(message_type, fields.to_string().as_bytes()).unwrap();
    logged(sequence, Event::Purchase(event))
}

fn refund_requested(purchase_id: Uuid, sequence: u64, minor: i64, time: &str) -> LoggedEvent {
    refund(
        purchase::PURCHASE_REFUND_REQUESTED_V1,
        purchase_id,
        sequence,
        minor,
        time,
    )
}

fn refunded(purchase_id: Uuid, sequence: u64, minor: i64, time: &str) -> LoggedEvent {
    refund(purchase::PURCHASE_REFUNDED_V1, purchase_id, sequence, minor, time)
}

#[test]
fn a_requested_refund_changes_nothing_until_it_is_paid_back() {
    let id = Uuid::new_v4();
    let authorized = settled(id, 10_050, PurchaseStatus::Authorized, "2025-01-19T15:00:01Z");
    let mut requested_only = authorized.to_vec();
    requested_only.push(refund_requested(id, 3, 1_000, "2025-01-19T16:00:00Z"));
    let folded = fold_purchases(HashMap::new(), &requested_only);
    let row = &folded.rows[&id];
    assert_eq!(row.status, PurchaseStatus::Authorized.as_str());
    assert_eq!((row.refunded_minor, spend(&folded).refunded_minor), (0, 0));
    assert_eq!(row.version, 3);

    // Paid back, it folds to the row a log without requests gives, but for its version.
    let mut paid_back = requested_only.clone();
    paid_back.push(refunded(id, 4, 1_000, "2025-01-19T16:00:05Z"));
    let mut old_log = authorized.to_vec();
    old_log.push(refunded(id, 3, 1_000, "2025-01-19T16:00:05Z"));
    let (new, old) = (
        fold_purchases(HashMap::new(), &paid_back),
        fold_purchases(HashMap::new(), &old_log),
    );
    let mut new_row = new.rows[&id].clone();
    assert_eq!(new_row.version, 4);
    new_row.version = 3;
    assert_eq!(new_row, old.rows[&id]);
    assert_eq!(spend(&new), spend(&old));
}

fn order_placed() -> LoggedEvent {
    let order_id = Uuid::new_v4();
    logged(
        1,
        Event::Order(order::Event::OrderPlaced(OrderPlaced {
            order_id,
            name: OrderName::parse("John Doe").unwrap(),
            note: None,
            placed_at: at("2025-01-19T15:00:00Z"),
            details: None,
            channel: order::Channel::Api,
            user_id: None,
            catalog_items: None,
        })),
    )
}

fn spend(folded: &Folded) -> SpendDelta {
    folded.spend[&(USER, "USD".to_owned())]
}

#[test]
fn a_purchase_requested_authorized_and_refunded_twice_in_one_batch_is_one_refunded_row() {
    let id = Uuid::new_v4();
    let events = [
        requested(id, 10_050, "2025-01-19T15:00:00Z"),
        order_placed(),
        verdict(id, 2, PurchaseStatus::Authorized, "2025-01-19T15:00:01Z"),
        refunded(id, 3, 1_000, "2025-01-19T16:00:00Z"),
        refunded(id, 4, 2_050, "2025-01-19T17:00:00Z"),
    ];
    assert!(to_load::<Purchases>(&events).is_empty());
    let folded = fold_purchases(HashMap::new(), &events);
    assert_eq!(folded.rows.len(), 1);
    let row = &folded.rows[&id];
    assert_eq!(row.status, PurchaseStatus::Refunded.as_str());
    assert_eq!((row.amount_minor, row.refunded_minor), (10_050, 3_050));
    assert_eq!(row.authorization_id.as_deref(), Some("auth_1"));
    assert_eq!((row.card_last4.as_str(), row.card_brand.as_str()), ("4242", "visa"));
    assert_eq!(row.requested_at, at("2025-01-19T15:00:00Z"));
    assert_eq!(row.updated_at, at("2025-01-19T17:00:00Z"));
    assert_eq!(row.version, 4);
    assert_eq!(
        spend(&folded),
        SpendDelta {
            purchases: 1,
            authorized_minor: 10_050,
            refunded_minor: 3_050
        }
    );
}

#[test]
fn events_for_stored_purchases_load_their_rows_and_add_only_their_own_spend() {
    let (stored_id, new_id) = (Uuid::new_v4(), Uuid::new_v4());
    let events = [
        refunded(stored_id, 3, 500, "2025-01-20T10:00:00Z"),
        requested(new_id, 2_000, "2025-01-20T11:00:00Z"),
        verdict(new_id, 2, PurchaseStatus::Authorized, "2025-01-20T11:00:01Z"),
    ];
    assert_eq!(to_load::<Purchases>(&events), vec![stored_id]);

    let authorized = settled(stored_id, 10_000, PurchaseStatus::Authorized, "2025-01-19T15:00:01Z");
    let mut stored = fold_purchases(HashMap::new(), &authorized).rows;
    let folded = fold_purchases(stored.clone(), &events);
    let row = &folded.rows[&stored_id];
    assert_eq!(
        (row.status.as_str(), row.refunded_minor, row.version),
        (PurchaseStatus::Refunded.as_str(), 500, 3)
    );
    assert_eq!(folded.rows[&new_id].status, PurchaseStatus::Authorized.as_str());
    assert_eq!(
        spend(&folded),
        SpendDelta {
            purchases: 1,
            authorized_minor: 2_000,
            refunded_minor: 500
        }
    );

    // Events the stored row already reflects neither change it nor count again.
    stored.get_mut(&stored_id).unwrap().version = 3;
    let again = fold_purchases(stored.clone(), &events[..1]);
    assert_eq!(again.rows[&stored_id], stored[&stored_id]);
    assert!(again.spend.is_empty());
}

#[test]
fn a_declined_purchase_counts_as_requested_but_adds_no_money() {
    let id = Uuid::new_v4();
    let events = settled(id, 4_200, PurchaseStatus::Declined, "2025-01-19T15:00:02Z");
    let folded = fold_purchases(HashMap::new(), &events);
    let row = &folded.rows[&id];
    assert_eq!(row.status, PurchaseStatus::Declined.as_str());
    assert_eq!(row.decline_reason.as_deref(), Some("insufficient_funds"));
    assert_eq!(row.authorization_id, None);
    assert_eq!(row.updated_at, at("2025-01-19T15:00:02Z"));
    assert_eq!(
        spend(&folded),
        SpendDelta {
            purchases: 1,
            ..SpendDelta::default()
        }
    );

    // The decline alone, on a stored request, changes the row and no totals.
    let stored = fold_purchases(HashMap::new(), &events[..1]).rows;
    let later = fold_purchases(stored, &events[1..]);
    assert_eq!(later.rows[&id].status, PurchaseStatus::Declined.as_str());
    assert!(later.spend.is_empty());
}

#[test]
fn order_events_and_events_without_a_request_touch_nothing() {
    let events = [
        order_placed(),
        verdict(Uuid::new_v4(), 2, PurchaseStatus::Authorized, "2025-01-19T15:00:01Z"),
    ];
    let folded = fold_purchases(HashMap::new(), &events);
    assert!(folded.rows.is_empty());
    assert!(folded.spend.is_empty());
}

#[test]
fn a_stored_row_with_a_known_status_loads_and_an_unknown_one_is_an_error() {
    let id = Uuid::new_v4();
    let row = fold_purchases(HashMap::new(), &[requested(id, 100, "2025-01-19T15:00:00Z")]).rows[&id].clone();
    let stored = |status: &str| PurchaseRow {
        status: status.to_owned(),
        ..row.clone()
    };
    for status in PurchaseStatus::ALL {
        assert!(check(&stored(status.as_str())).is_ok(), "{status:?}");
    }
    assert_eq!(row.status, PurchaseStatus::Requested.as_str());
    let err = check(&stored("pending")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("purchase {id} has status `pending`, which is not a purchase status")
    );
}
