//! `purchases` and `user_spend`: one row per purchase as of its latest event, and per user and
//! currency the count of purchases requested and the sums authorized and refunded.
//!
//! Both tables belong to one projection with one checkpoint, so a refund shows in the purchase
//! and in the user's totals in the same transaction, or in neither.
//!
//! A batch is folded in three steps: [`to_load`] names the purchases the batch changes but did
//! not start (their rows are read with one query), [`fold`] applies the batch's events in order
//! to those rows in memory and tallies the spend changes, and [`apply`] writes every touched row
//! with one upsert per table.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::purchase::{self, PurchaseStatus};
use domain::Event;
use sqlx::PgConnection;
use thiserror::Error;
use tracing::warn;
use uuid::Uuid;

use super::{rows_to_load, LoggedEvent};

/// Every status a row can hold, to read `purchases.status` back.
const STATUSES: [PurchaseStatus; 4] = [
    PurchaseStatus::Requested,
    PurchaseStatus::Authorized,
    PurchaseStatus::Declined,
    PurchaseStatus::Refunded,
];

/// A `purchases.status` this code did not write: the table and the code disagree.
#[derive(Debug, Error)]
#[error("purchase {purchase_id} has status `{status}`, which is not a purchase status")]
struct UnknownStatus {
    purchase_id: Uuid,
    status: String,
}

/// A purchase's row as the batch leaves it; the columns of `purchases`, one for one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PurchaseRow {
    user_id: Uuid,
    username: String,
    order_id: Option<Uuid>,
    amount_minor: i64,
    currency: String,
    refunded_minor: i64,
    status: PurchaseStatus,
    payment_method: String,
    card_brand: String,
    card_last4: String,
    card_exp_month: i32,
    card_exp_year: i32,
    card_fingerprint: String,
    authorization_id: Option<String>,
    decline_reason: Option<String>,
    transaction_date: DateTime<Utc>,
    requested_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

/// `purchases` as stored, before its status is read back.
#[derive(Debug, sqlx::FromRow)]
struct StoredRow {
    purchase_id: Uuid,
    user_id: Uuid,
    username: String,
    order_id: Option<Uuid>,
    amount_minor: i64,
    currency: String,
    refunded_minor: i64,
    status: String,
    payment_method: String,
    card_brand: String,
    card_last4: String,
    card_exp_month: i32,
    card_exp_year: i32,
    card_fingerprint: String,
    authorization_id: Option<String>,
    decline_reason: Option<String>,
    transaction_date: DateTime<Utc>,
    requested_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl StoredRow {
    /// The row keyed by its purchase, with its status read back.
    fn into_row(self) -> Result<(Uuid, PurchaseRow), UnknownStatus> {
        let stored = self;
        let status = STATUSES
            .into_iter()
            .find(|s| s.as_str() == stored.status)
            .ok_or_else(|| UnknownStatus {
                purchase_id: stored.purchase_id,
                status: stored.status.clone(),
            })?;
        let row = PurchaseRow {
            user_id: stored.user_id,
            username: stored.username,
            order_id: stored.order_id,
            amount_minor: stored.amount_minor,
            currency: stored.currency,
            refunded_minor: stored.refunded_minor,
            status,
            payment_method: stored.payment_method,
            card_brand: stored.card_brand,
            card_last4: stored.card_last4,
            card_exp_month: stored.card_exp_month,
            card_exp_year: stored.card_exp_year,
            card_fingerprint: stored.card_fingerprint,
            authorization_id: stored.authorization_id,
            decline_reason: stored.decline_reason,
            transaction_date: stored.transaction_date,
            requested_at: stored.requested_at,
            updated_at: stored.updated_at,
            version: stored.version,
        };
        Ok((stored.purchase_id, row))
    }
}

/// What one batch adds to a user's totals in one currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SpendDelta {
    purchases: i64,
    authorized_minor: i64,
    refunded_minor: i64,
}

/// The rows a batch touched and what it adds to `user_spend`, keyed by (user, currency).
#[derive(Debug, Default)]
struct Folded {
    rows: HashMap<Uuid, PurchaseRow>,
    spend: HashMap<(Uuid, String), SpendDelta>,
}

fn purchase_event(event: &LoggedEvent) -> Option<&purchase::Event> {
    match &event.envelope.message {
        Event::Purchase(purchase) => Some(purchase),
        // Other aggregates share the log; they are not purchases.
        Event::Order(_) => None,
    }
}

/// The purchases the batch changes without having requested them: their rows come from the
/// table. Those requested in the batch start from their `PurchaseRequested` and need no read:
/// a request is its purchase's first event, and rows commit with the checkpoint, so no request
/// is ever applied twice.
fn to_load(events: &[LoggedEvent]) -> Vec<Uuid> {
    rows_to_load(events.iter().filter_map(purchase_event), |e| {
        matches!(e, purchase::Event::PurchaseRequested(_))
    })
}

/// Applies the batch's purchase events in log order to `loaded` (the stored rows [`to_load`]
/// named) and returns every row the batch touched with the spend it adds.
///
/// An event at or below a row's `version` has been applied already and is passed over, so it
/// neither rewrites the row nor counts twice in `user_spend`.
fn fold(mut loaded: HashMap<Uuid, PurchaseRow>, events: &[LoggedEvent]) -> Folded {
    let mut folded = Folded::default();
    for logged in events {
        let Some(event) = purchase_event(logged) else {
            continue;
        };
        let version = logged.envelope.sequence.unwrap_or(1) as i64;
        let purchase_id = event.purchase_id();
        if let purchase::Event::PurchaseRequested(requested) = event {
            let row = requested_row(requested, version);
            folded.spend_of(&row).purchases += 1;
            folded.rows.insert(purchase_id, row);
            continue;
        }
        let Some(mut row) = folded.rows.remove(&purchase_id).or_else(|| loaded.remove(&purchase_id)) else {
            // The decider only accepts these after the request, and a purchase's events share a
            // partition in order: a missing row is a fact that cannot have been decided. Like
            // `evolve`, keep going rather than stall every purchase behind it.
            warn!(%purchase_id, version, "purchase event without a requested purchase; skipped");
            continue;
        };
        if version > row.version {
            let delta = evolve(&mut row, event, version);
            let spend = folded.spend_of(&row);
            spend.authorized_minor += delta.authorized_minor;
            spend.refunded_minor += delta.refunded_minor;
        }
        folded.rows.insert(purchase_id, row);
    }
    folded.spend.retain(|_, delta| *delta != SpendDelta::default());
    folded
}

impl Folded {
    fn spend_of(&mut self, row: &PurchaseRow) -> &mut SpendDelta {
        self.spend.entry((row.user_id, row.currency.clone())).or_default()
    }
}

fn requested_row(requested: &purchase::PurchaseRequested, version: i64) -> PurchaseRow {
    let card = &requested.card;
    PurchaseRow {
        user_id: requested.user_id,
        username: requested.username.as_str().to_owned(),
        order_id: requested.order_id,
        amount_minor: requested.amount.minor(),
        currency: requested.amount.currency().code().to_owned(),
        refunded_minor: 0,
        status: PurchaseStatus::Requested,
        payment_method: requested.payment_method.as_str().to_owned(),
        card_brand: card.brand().as_str().to_owned(),
        card_last4: card.last4().to_owned(),
        card_exp_month: i32::from(card.exp_month()),
        card_exp_year: i32::from(card.exp_year()),
        card_fingerprint: card.fingerprint().to_owned(),
        authorization_id: None,
        decline_reason: None,
        transaction_date: requested.transaction_date,
        requested_at: requested.requested_at,
        updated_at: requested.requested_at,
        version,
    }
}

/// Applies one event after the request to `row` and returns what it adds to the user's spend.
fn evolve(row: &mut PurchaseRow, event: &purchase::Event, version: i64) -> SpendDelta {
    let mut delta = SpendDelta::default();
    match event {
        purchase::Event::PurchaseRequested(_) => {}
        purchase::Event::PurchaseAuthorized(authorized) => {
            row.status = PurchaseStatus::Authorized;
            row.authorization_id = Some(authorized.authorization_id.clone());
            delta.authorized_minor = row.amount_minor;
        }
        purchase::Event::PurchaseDeclined(declined) => {
            row.status = PurchaseStatus::Declined;
            row.decline_reason = Some(declined.reason.clone());
        }
        purchase::Event::PurchaseRefunded(refunded) => {
            // The decider reads a refund in the purchase's currency, so minor units add up.
            row.status = PurchaseStatus::Refunded;
            row.refunded_minor += refunded.amount.minor();
            delta.refunded_minor = refunded.amount.minor();
        }
    }
    row.updated_at = event.occurred_at();
    row.version = version;
    delta
}

#[tracing::instrument(skip_all, fields(events = events.len()))]
pub(super) async fn apply(tx: &mut PgConnection, events: &[LoggedEvent]) -> Result<(), sqlx::Error> {
    let ids = to_load(events);
    let loaded = if ids.is_empty() {
        HashMap::new()
    } else {
        load(tx, &ids).await?
    };
    let folded = fold(loaded, events);
    if !folded.rows.is_empty() {
        upsert_purchases(tx, folded.rows).await?;
    }
    if !folded.spend.is_empty() {
        add_spend(tx, folded.spend).await?;
    }
    Ok(())
}

async fn load(tx: &mut PgConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, PurchaseRow>, sqlx::Error> {
    let stored: Vec<StoredRow> = sqlx::query_as(
        "SELECT purchase_id, user_id, username, order_id, amount_minor, currency, refunded_minor, status, \
                payment_method, card_brand, card_last4, card_exp_month, card_exp_year, card_fingerprint, \
                authorization_id, decline_reason, transaction_date, requested_at, updated_at, version \
         FROM purchases WHERE purchase_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(tx)
    .await?;
    stored
        .into_iter()
        .map(|row| {
            row.into_row().map_err(|unknown| sqlx::Error::ColumnDecode {
                index: "status".to_owned(),
                source: Box::new(unknown),
            })
        })
        .collect()
}

async fn upsert_purchases(tx: &mut PgConnection, rows: HashMap<Uuid, PurchaseRow>) -> Result<(), sqlx::Error> {
    let n = rows.len();
    let mut ids = Vec::with_capacity(n);
    let mut users = Vec::with_capacity(n);
    let mut usernames = Vec::with_capacity(n);
    let mut orders = Vec::with_capacity(n);
    let mut amounts = Vec::with_capacity(n);
    let mut currencies = Vec::with_capacity(n);
    let mut refunded = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut methods = Vec::with_capacity(n);
    let mut brands = Vec::with_capacity(n);
    let mut last4s = Vec::with_capacity(n);
    let mut exp_months = Vec::with_capacity(n);
    let mut exp_years = Vec::with_capacity(n);
    let mut fingerprints = Vec::with_capacity(n);
    let mut authorizations = Vec::with_capacity(n);
    let mut declines = Vec::with_capacity(n);
    let mut transaction_dates = Vec::with_capacity(n);
    let mut requested = Vec::with_capacity(n);
    let mut updated = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    for (purchase_id, row) in rows {
        ids.push(purchase_id);
        users.push(row.user_id);
        usernames.push(row.username);
        orders.push(row.order_id);
        amounts.push(row.amount_minor);
        currencies.push(row.currency);
        refunded.push(row.refunded_minor);
        statuses.push(row.status.as_str());
        methods.push(row.payment_method);
        brands.push(row.card_brand);
        last4s.push(row.card_last4);
        exp_months.push(row.card_exp_month);
        exp_years.push(row.card_exp_year);
        fingerprints.push(row.card_fingerprint);
        authorizations.push(row.authorization_id);
        declines.push(row.decline_reason);
        transaction_dates.push(row.transaction_date);
        requested.push(row.requested_at);
        updated.push(row.updated_at);
        versions.push(row.version);
    }
    // Only what later events change is updated; the version guard keeps an older event from
    // overwriting a newer row.
    sqlx::query(
        "INSERT INTO purchases (purchase_id, user_id, username, order_id, amount_minor, currency, refunded_minor, \
                                status, payment_method, card_brand, card_last4, card_exp_month, card_exp_year, \
                                card_fingerprint, authorization_id, decline_reason, transaction_date, \
                                requested_at, updated_at, version) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::bigint[], $6::text[], \
                              $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int[], \
                              $13::int[], $14::text[], $15::text[], $16::text[], $17::timestamptz[], \
                              $18::timestamptz[], $19::timestamptz[], $20::bigint[]) \
         ON CONFLICT (purchase_id) DO UPDATE SET \
           refunded_minor = EXCLUDED.refunded_minor, status = EXCLUDED.status, \
           authorization_id = EXCLUDED.authorization_id, decline_reason = EXCLUDED.decline_reason, \
           updated_at = EXCLUDED.updated_at, version = EXCLUDED.version \
         WHERE purchases.version < EXCLUDED.version",
    )
    .bind(ids)
    .bind(users)
    .bind(usernames)
    .bind(orders)
    .bind(amounts)
    .bind(currencies)
    .bind(refunded)
    .bind(statuses)
    .bind(methods)
    .bind(brands)
    .bind(last4s)
    .bind(exp_months)
    .bind(exp_years)
    .bind(fingerprints)
    .bind(authorizations)
    .bind(declines)
    .bind(transaction_dates)
    .bind(requested)
    .bind(updated)
    .bind(versions)
    .execute(tx)
    .await?;
    Ok(())
}

async fn add_spend(tx: &mut PgConnection, spend: HashMap<(Uuid, String), SpendDelta>) -> Result<(), sqlx::Error> {
    let n = spend.len();
    let mut users = Vec::with_capacity(n);
    let mut currencies = Vec::with_capacity(n);
    let mut purchases = Vec::with_capacity(n);
    let mut authorized = Vec::with_capacity(n);
    let mut refunded = Vec::with_capacity(n);
    for ((user_id, currency), delta) in spend {
        users.push(user_id);
        currencies.push(currency);
        purchases.push(delta.purchases);
        authorized.push(delta.authorized_minor);
        refunded.push(delta.refunded_minor);
    }
    // Deltas, not totals: the batch only knows what it adds, never the user's whole history.
    sqlx::query(
        "INSERT INTO user_spend (user_id, currency, purchases, authorized_minor, refunded_minor) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) \
         ON CONFLICT (user_id, currency) DO UPDATE SET \
           purchases = user_spend.purchases + EXCLUDED.purchases, \
           authorized_minor = user_spend.authorized_minor + EXCLUDED.authorized_minor, \
           refunded_minor = user_spend.refunded_minor + EXCLUDED.refunded_minor",
    )
    .bind(users)
    .bind(currencies)
    .bind(purchases)
    .bind(authorized)
    .bind(refunded)
    .execute(tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::card::{CardExpiry, CardNumber, MaskedCard};
    use domain::money::{Currency, Money};
    use domain::order::{self, OrderName, OrderPlaced};
    use domain::purchase::{
        PaymentMethod, PurchaseAuthorized, PurchaseDeclined, PurchaseRefunded, PurchaseRequested, RefundReason,
        Username,
    };
    use service_kit::kafka::Envelope;

    const USER: Uuid = Uuid::from_u128(0x1111);

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::parse("currency", "USD").unwrap()).unwrap()
    }

    fn logged(sequence: u64, message: Event) -> LoggedEvent {
        LoggedEvent {
            partition: 0,
            offset: 0,
            envelope: Envelope {
                id: Uuid::new_v4(),
                time: message.occurred_at(),
                sequence: Some(sequence),
                causation_id: None,
                correlation_id: Uuid::new_v4(),
                traceparent: None,
                message,
            },
        }
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

    fn authorized(purchase_id: Uuid, sequence: u64, time: &str) -> LoggedEvent {
        logged(
            sequence,
            Event::Purchase(purchase::Event::PurchaseAuthorized(PurchaseAuthorized {
                purchase_id,
                authorization_id: "auth_1".to_owned(),
                authorized_at: at(time),
                order_id: None,
                amount: None,
                user_id: None,
            })),
        )
    }

    fn declined(purchase_id: Uuid, sequence: u64, time: &str) -> LoggedEvent {
        logged(
            sequence,
            Event::Purchase(purchase::Event::PurchaseDeclined(PurchaseDeclined {
                purchase_id,
                reason: "insufficient_funds".to_owned(),
                declined_at: at(time),
                order_id: None,
                user_id: None,
            })),
        )
    }

    fn refunded(purchase_id: Uuid, sequence: u64, minor: i64, time: &str) -> LoggedEvent {
        logged(
            sequence,
            Event::Purchase(purchase::Event::PurchaseRefunded(PurchaseRefunded {
                purchase_id,
                refund_id: Uuid::new_v4(),
                amount: usd(minor),
                reason: RefundReason::parse("damaged").unwrap(),
                refunded_at: at(time),
                order_id: None,
            })),
        )
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
            authorized(id, 2, "2025-01-19T15:00:01Z"),
            refunded(id, 3, 1_000, "2025-01-19T16:00:00Z"),
            refunded(id, 4, 2_050, "2025-01-19T17:00:00Z"),
        ];
        assert!(to_load(&events).is_empty());
        let folded = fold(HashMap::new(), &events);
        assert_eq!(folded.rows.len(), 1);
        let row = &folded.rows[&id];
        assert_eq!(row.status, PurchaseStatus::Refunded);
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
            authorized(new_id, 2, "2025-01-20T11:00:01Z"),
        ];
        assert_eq!(to_load(&events), vec![stored_id]);

        let mut stored = fold(
            HashMap::new(),
            &[
                requested(stored_id, 10_000, "2025-01-19T15:00:00Z"),
                authorized(stored_id, 2, "2025-01-19T15:00:01Z"),
            ],
        )
        .rows;
        let folded = fold(stored.clone(), &events);
        let row = &folded.rows[&stored_id];
        assert_eq!(
            (row.status, row.refunded_minor, row.version),
            (PurchaseStatus::Refunded, 500, 3)
        );
        assert_eq!(folded.rows[&new_id].status, PurchaseStatus::Authorized);
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
        let again = fold(stored.clone(), &events[..1]);
        assert_eq!(again.rows[&stored_id], stored[&stored_id]);
        assert!(again.spend.is_empty());
    }

    #[test]
    fn a_declined_purchase_counts_as_requested_but_adds_no_money() {
        let id = Uuid::new_v4();
        let events = [
            requested(id, 4_200, "2025-01-19T15:00:00Z"),
            declined(id, 2, "2025-01-19T15:00:02Z"),
        ];
        let folded = fold(HashMap::new(), &events);
        let row = &folded.rows[&id];
        assert_eq!(row.status, PurchaseStatus::Declined);
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
        let stored = fold(HashMap::new(), &events[..1]).rows;
        let later = fold(stored, &events[1..]);
        assert_eq!(later.rows[&id].status, PurchaseStatus::Declined);
        assert!(later.spend.is_empty());
    }

    #[test]
    fn order_events_and_events_without_a_request_touch_nothing() {
        let events = [order_placed(), authorized(Uuid::new_v4(), 2, "2025-01-19T15:00:01Z")];
        let folded = fold(HashMap::new(), &events);
        assert!(folded.rows.is_empty());
        assert!(folded.spend.is_empty());
    }

    #[test]
    fn a_stored_status_reads_back_and_an_unknown_one_is_an_error() {
        let id = Uuid::new_v4();
        let row = fold(HashMap::new(), &[requested(id, 100, "2025-01-19T15:00:00Z")]).rows[&id].clone();
        let stored = |status: &str| StoredRow {
            purchase_id: id,
            user_id: row.user_id,
            username: row.username.clone(),
            order_id: row.order_id,
            amount_minor: row.amount_minor,
            currency: row.currency.clone(),
            refunded_minor: row.refunded_minor,
            status: status.to_owned(),
            payment_method: row.payment_method.clone(),
            card_brand: row.card_brand.clone(),
            card_last4: row.card_last4.clone(),
            card_exp_month: row.card_exp_month,
            card_exp_year: row.card_exp_year,
            card_fingerprint: row.card_fingerprint.clone(),
            authorization_id: None,
            decline_reason: None,
            transaction_date: row.transaction_date,
            requested_at: row.requested_at,
            updated_at: row.updated_at,
            version: row.version,
        };
        for status in STATUSES {
            let (read_id, read) = stored(status.as_str()).into_row().unwrap();
            assert_eq!((read_id, read.status), (id, status));
        }
        assert_eq!(stored(PurchaseStatus::Requested.as_str()).into_row().unwrap().1, row);
        let err = stored("pending").into_row().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("purchase {id} has status `pending`, which is not a purchase status")
        );
    }
}
