//! `purchases` and `user_spend`: one row per purchase as of its latest event, and per user and
//! currency the count of purchases requested and the sums authorized and refunded.
//!
//! Both tables belong to one projection with one checkpoint, so a refund shows in the purchase
//! and in the user's totals in the same transaction, or in neither.
//!
//! Folded like every [`Latest`] read model: the purchases a batch changes but did not request are
//! loaded with one query, the batch's events applied in log order while the spend they add is
//! tallied, and every touched row written with one upsert per table
//! ([`read_models::purchases`]).

use std::collections::HashMap;

use domain::purchase::{self, PurchaseStatus};
use read_models::purchases::{self as table, PurchaseRow, SpendRow};
use sqlx::PgConnection;
use thiserror::Error;
use uuid::Uuid;

use super::{fold_batch, unknown_value, Latest, LoggedEvent};

/// A `purchases.status` this code did not write: the table and the code disagree.
#[derive(Debug, Error)]
#[error("purchase {purchase_id} has status `{status}`, which is not a purchase status")]
struct UnknownStatus {
    purchase_id: Uuid,
    status: String,
}

/// Checks that a stored row's status is one this code knows.
fn check(row: &PurchaseRow) -> Result<(), UnknownStatus> {
    match PurchaseStatus::from_wire(&row.status) {
        Some(_) => Ok(()),
        None => Err(UnknownStatus {
            purchase_id: row.purchase_id,
            status: row.status.clone(),
        }),
    }
}

/// What one batch adds to a user's totals in one currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SpendDelta {
    purchases: i64,
    authorized_minor: i64,
    refunded_minor: i64,
}

/// The `purchases` read model, tallying what the batch adds to `user_spend` by (user, currency)
/// as it goes.
#[derive(Debug, Default)]
struct Purchases {
    spend: HashMap<(Uuid, String), SpendDelta>,
}

impl Purchases {
    fn spend_of(&mut self, row: &PurchaseRow) -> &mut SpendDelta {
        self.spend.entry((row.user_id, row.currency.clone())).or_default()
    }

    /// The batch's `rows` beside what it adds to `user_spend`, leaving out totals it left as they were.
    fn folded(mut self, rows: HashMap<Uuid, PurchaseRow>) -> Folded {
        self.spend.retain(|_, delta| *delta != SpendDelta::default());
        Folded {
            rows,
            spend: self.spend,
        }
    }
}

impl Latest for Purchases {
    type Event = purchase::Event;
    type Row = PurchaseRow;

    fn start(&mut self, requested: &purchase::PurchaseRequested, version: i64) -> PurchaseRow {
        let row = requested_row(requested, version);
        self.spend_of(&row).purchases += 1;
        row
    }

    /// A purchase's events share a partition in order, and one at or below the row's version is
    /// passed over before this, so nothing counts twice in `user_spend`.
    fn evolve(&mut self, row: &mut PurchaseRow, event: &purchase::Event, version: i64) {
        let delta = evolve(row, event, version);
        let spend = self.spend_of(row);
        spend.authorized_minor += delta.authorized_minor;
        spend.refunded_minor += delta.refunded_minor;
    }

    fn check(row: &PurchaseRow) -> Result<(), sqlx::Error> {
        check(row).map_err(|unknown| unknown_value("status", unknown))
    }
}

/// The rows a batch touched and what it adds to `user_spend`, keyed by (user, currency).
#[derive(Debug, Default)]
struct Folded {
    rows: HashMap<Uuid, PurchaseRow>,
    spend: HashMap<(Uuid, String), SpendDelta>,
}

fn requested_row(requested: &purchase::PurchaseRequested, version: i64) -> PurchaseRow {
    let card = &requested.card;
    PurchaseRow {
        purchase_id: requested.purchase_id,
        user_id: requested.user_id,
        username: requested.username.as_str().to_owned(),
        order_id: requested.order_id,
        amount_minor: requested.amount.minor(),
        currency: requested.amount.currency().code().to_owned(),
        refunded_minor: 0,
        status: PurchaseStatus::Requested.as_str().to_owned(),
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
            row.status = PurchaseStatus::Authorized.as_str().to_owned();
            row.authorization_id = Some(authorized.authorization_id.clone());
            delta.authorized_minor = row.amount_minor;
        }
        purchase::Event::PurchaseDeclined(declined) => {
            row.status = PurchaseStatus::Declined.as_str().to_owned();
            row.decline_reason = Some(declined.reason.clone());
        }
        // Nothing is refunded until the gateway has paid it back: `PurchaseRefunded` says so.
        purchase::Event::PurchaseRefundRequested(_) => {}
        purchase::Event::PurchaseRefunded(refunded) => {
            // The decider reads a refund in the purchase's currency, so minor units add up.
            row.status = PurchaseStatus::Refunded.as_str().to_owned();
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
    let mut purchases = Purchases::default();
    let rows = fold_batch(tx, &mut purchases, events).await?;
    let folded = purchases.folded(rows);
    table::upsert(tx, folded.rows.into_values().collect()).await?;
    let spend = folded
        .spend
        .into_iter()
        .map(|((user_id, currency), delta)| SpendRow {
            user_id,
            currency,
            purchases: delta.purchases,
            authorized_minor: delta.authorized_minor,
            refunded_minor: delta.refunded_minor,
        })
        .collect();
    table::add_spend(tx, spend).await
}

#[cfg(test)]
mod tests;
