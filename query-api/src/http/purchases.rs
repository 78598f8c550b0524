//! `purchases` and `user_spend`: one purchase, a user's purchases newest first, and a user's
//! totals per currency.
//!
//! Amounts leave as `{"value": "100.50", "minor": 10050, "currency": "USD"}`: `value` has exactly
//! the currency's decimals and is text, so no client has to round-trip money through a float.

use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use read_models::purchases::{self as table, PurchaseRow, SpendRow};
use serde::Serialize;
use service_kit::extract::{Path, Query};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::page::{found, page_of, parse_limit, parse_uuid, query_path, stored_money, Amount, Cursor, PageParams};
use super::reader::{Read, Reader};
use super::{ApiContext, ApiError};

const PROJECTION: &str = "purchases";

pub(super) fn router() -> Router<ApiContext> {
    Router::new()
        .route("/api/v1/purchases/{purchase_id}", get(by_id))
        .route("/api/v1/users/{user_id}/purchases", get(list_for_user))
        .route("/api/v1/users/{user_id}/spend", get(spend))
}

/// The routes' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(by_id, list_for_user, spend))]
pub(super) struct PurchasesApi;

/// One purchase as clients see it.
#[derive(Debug, Serialize, ToSchema)]
struct Purchase {
    purchase_id: Uuid,
    user_id: Uuid,
    username: String,
    order_id: Option<Uuid>,
    /// `requested`, `authorized`, `declined` or `refunded`.
    #[schema(example = "authorized")]
    status: String,
    amount: Amount,
    refunded: Amount,
    payment_method: String,
    card: Card,
    authorization_id: Option<String>,
    decline_reason: Option<String>,
    transaction_date: DateTime<Utc>,
    requested_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

/// What is kept of the card: enough to recognise it, nothing that can charge it.
#[derive(Debug, Serialize, ToSchema)]
struct Card {
    brand: String,
    last4: String,
    exp_month: i32,
    exp_year: i32,
    fingerprint: String,
}

impl TryFrom<PurchaseRow> for Purchase {
    type Error = sqlx::Error;

    fn try_from(record: PurchaseRow) -> Result<Self, Self::Error> {
        let amount = stored_money("amount_minor", record.amount_minor, &record.currency)?;
        let refunded = stored_money("refunded_minor", record.refunded_minor, &record.currency)?;
        Ok(Self {
            purchase_id: record.purchase_id,
            user_id: record.user_id,
            username: record.username,
            order_id: record.order_id,
            status: record.status,
            amount: Amount::of(amount),
            refunded: Amount::of(refunded),
            payment_method: record.payment_method,
            card: Card {
                brand: record.card_brand,
                last4: record.card_last4,
                exp_month: record.card_exp_month,
                exp_year: record.card_exp_year,
                fingerprint: record.card_fingerprint,
            },
            authorization_id: record.authorization_id,
            decline_reason: record.decline_reason,
            transaction_date: record.transaction_date,
            requested_at: record.requested_at,
            updated_at: record.updated_at,
            version: record.version,
        })
    }
}

page_of!(PurchasePage of Purchase);

/// A user's totals, one entry per currency they have paid in; none for an unknown user.
#[derive(Debug, Serialize, ToSchema)]
struct Spend {
    user_id: Uuid,
    currencies: Vec<CurrencySpend>,
}

#[derive(Debug, Serialize, ToSchema)]
struct CurrencySpend {
    currency: String,
    /// Purchases requested, whatever became of them.
    purchases: i64,
    authorized: Amount,
    refunded: Amount,
}

impl TryFrom<SpendRow> for CurrencySpend {
    type Error = sqlx::Error;

    fn try_from(record: SpendRow) -> Result<Self, Self::Error> {
        // The currency is named once, beside the amounts.
        let amount = |column, minor| stored_money(column, minor, &record.currency).map(Amount::of);
        Ok(Self {
            purchases: record.purchases,
            authorized: amount("authorized_minor", record.authorized_minor)?.without_currency(),
            refunded: amount("refunded_minor", record.refunded_minor)?.without_currency(),
            currency: record.currency,
        })
    }
}

query_path! {
    for users and staff;
    path = "/api/v1/purchases/{purchase_id}", tag = "purchases",
    params(("purchase_id" = Uuid, Path, description = "The purchase's id")),
    ok = ("The purchase.", Purchase), not_found = NotFound;
    /// One purchase, with its masked card; a user reads only its own.
    ///
    /// Another user's purchase is not found, exactly like a missing one.
    async fn by_id(read: Read, Path(purchase_id): Path<String>) -> Result<Json<Purchase>, ApiError> {
        let purchase_id = parse_uuid("purchase_id", &purchase_id)?;
        read.one(PROJECTION, "purchase", purchase_id, table::by_id(read.pool(), purchase_id, read.owner())).await
    }
}

query_path! {
    for users and staff;
    path = "/api/v1/users/{user_id}/purchases", tag = "purchases",
    summary = "A user's purchases, newest first; a user reads only its own.",
    params(("user_id" = Uuid, Path, description = "The user's id"), PageParams),
    ok = ("One page, newest first.", PurchasePage), not_found = NotFound;
    /// Newest first, in keyset pages on `(requested_at, purchase_id)`: stable while new purchases
    /// arrive, and every page is one range scan of `purchases_by_user`.
    async fn list_for_user(
        read: Read,
        Path(user_id): Path<String>,
        Query(params): Query<PageParams>,
    ) -> Result<Json<PurchasePage>, ApiError> {
        let user_id = readable_user(read.reader(), &user_id)?;
        let limit = parse_limit(params.limit.as_deref())?;
        let after = params.after.as_deref().map(Cursor::decode).transpose()?;
        read.wait(PROJECTION).await?;
        let rows = table::page_of_user(read.pool(), user_id, after.map(Into::into), limit + 1).await?;
        let items = rows.into_iter().map(Purchase::try_from).collect::<Result<_, _>>()?;
        Ok(Json(PurchasePage::of(items, limit, |p| Cursor { at: p.requested_at, id: p.purchase_id }.encode())))
    }
}

/// The user of a `/users/{user_id}/…` path, when `reader` may read that user's rows: the path is
/// then the `user_id` condition of the query. Another user is not found, whether or not it has
/// purchases, so the answer tells nothing about that user.
fn readable_user(reader: Reader, raw: &str) -> Result<Uuid, ApiError> {
    let user_id = parse_uuid("user_id", raw)?;
    found(reader.may_read(user_id).then_some(user_id), "user", user_id)
}

query_path! {
    for users and staff;
    path = "/api/v1/users/{user_id}/spend", tag = "purchases",
    params(("user_id" = Uuid, Path, description = "The user's id")),
    ok = ("The user's totals; none for a user without purchases.", Spend), not_found = NotFound;
    /// A user's totals per currency; a user reads only its own.
    async fn spend(read: Read, Path(user_id): Path<String>) -> Result<Json<Spend>, ApiError> {
        let user_id = readable_user(read.reader(), &user_id)?;
        read.wait(PROJECTION).await?;
        let rows = table::spend_of_user(read.pool(), user_id).await?;
        let currencies = rows.into_iter().map(CurrencySpend::try_from).collect::<Result<_, _>>()?;
        Ok(Json(Spend { user_id, currencies }))
    }
}
