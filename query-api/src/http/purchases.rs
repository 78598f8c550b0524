//! `purchases` and `user_spend`: one purchase, a user's purchases newest first, and a user's
//! totals per currency.
//!
//! Amounts leave as `{"value": "100.50", "minor": 10050, "currency": "USD"}`: `value` has exactly
//! the currency's decimals and is text, so no client has to round-trip money through a float.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::consistency::{Consistency, TokenQuery};
use super::extract::{Path, Query};
use super::openapi::{Forbidden, InvalidParameter, NotFound, Unauthorized, Unavailable};
use super::page::{parse_uuid, stored_money, Amount, Cursor};
use super::reader::Reader;
use super::track_users::parse_limit;
use super::{ApiContext, ApiError};

const PROJECTION: &str = "purchases";

/// The columns [`PurchaseRecord`] reads, in one place for every query.
macro_rules! select_purchases {
    () => {
        "SELECT purchase_id, user_id, username, order_id, amount_minor, currency, refunded_minor, status, \
                payment_method, card_brand, card_last4, card_exp_month, card_exp_year, card_fingerprint, \
                authorization_id, decline_reason, transaction_date, requested_at, updated_at, version \
         FROM purchases "
    };
}

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

/// A `purchases` row as stored.
#[derive(Debug, sqlx::FromRow)]
struct PurchaseRecord {
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

impl TryFrom<PurchaseRecord> for Purchase {
    type Error = sqlx::Error;

    fn try_from(record: PurchaseRecord) -> Result<Self, Self::Error> {
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

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PurchasePage)]
struct Page {
    items: Vec<Purchase>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Items per page, 1 to 500; 50 when absent.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// The `next_after` of the previous page.
    after: Option<String>,
}

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

#[derive(Debug, sqlx::FromRow)]
struct SpendRecord {
    currency: String,
    purchases: i64,
    authorized_minor: i64,
    refunded_minor: i64,
}

impl TryFrom<SpendRecord> for CurrencySpend {
    type Error = sqlx::Error;

    fn try_from(record: SpendRecord) -> Result<Self, Self::Error> {
        let authorized = stored_money("authorized_minor", record.authorized_minor, &record.currency)?;
        let refunded = stored_money("refunded_minor", record.refunded_minor, &record.currency)?;
        Ok(Self {
            currency: record.currency,
            purchases: record.purchases,
            authorized: Amount::of(authorized).without_currency(),
            refunded: Amount::of(refunded).without_currency(),
        })
    }
}

/// One purchase, with its masked card; a user reads only its own.
///
/// Another user's purchase is not found, exactly like a missing one.
#[utoipa::path(
    get,
    path = "/api/v1/purchases/{purchase_id}",
    tag = "purchases",
    params(
        ("purchase_id" = Uuid, Path, description = "The purchase's id"),
        TokenQuery,
        ("X-Consistency-Token" = Option<String>, Header,
            description = "The `consistency_token` of an earlier write, if not given as query parameter"),
    ),
    security(("bearer" = ["read"]), ("bearer" = ["read:all"])),
    responses(
        (status = 200, description = "The purchase.", body = Purchase),
        (status = 400, response = InvalidParameter),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip(context, consistency))]
async fn by_id(
    State(context): State<ApiContext>,
    reader: Reader,
    consistency: Consistency,
    Path(purchase_id): Path<String>,
) -> Result<Json<Purchase>, ApiError> {
    let purchase_id = parse_uuid("purchase_id", &purchase_id)?;
    consistency.wait(&context, PROJECTION).await?;
    let record: Option<PurchaseRecord> = sqlx::query_as(concat!(
        select_purchases!(),
        "WHERE purchase_id = $1 AND ($2::uuid IS NULL OR user_id = $2)"
    ))
    .bind(purchase_id)
    .bind(reader.owner())
    .fetch_optional(&context.pool)
    .await?;
    let record = record.ok_or(ApiError::NotFound {
        resource: "purchase",
        key: purchase_id.to_string(),
    })?;
    Ok(Json(Purchase::try_from(record)?))
}

/// Newest first, in keyset pages on `(requested_at, purchase_id)`: stable while new purchases
/// arrive, and every page is one range scan of `purchases_by_user`.
#[utoipa::path(
    get,
    path = "/api/v1/users/{user_id}/purchases",
    tag = "purchases",
    summary = "A user's purchases, newest first; a user reads only its own.",
    params(
        ("user_id" = Uuid, Path, description = "The user's id"),
        ListParams,
        TokenQuery,
        ("X-Consistency-Token" = Option<String>, Header,
            description = "The `consistency_token` of an earlier write, if not given as query parameter"),
    ),
    security(("bearer" = ["read"]), ("bearer" = ["read:all"])),
    responses(
        (status = 200, description = "One page, newest first.", body = Page),
        (status = 400, response = InvalidParameter),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip(context, consistency))]
async fn list_for_user(
    State(context): State<ApiContext>,
    reader: Reader,
    consistency: Consistency,
    Path(user_id): Path<String>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page>, ApiError> {
    let user_id = readable_user(reader, &user_id)?;
    let limit = parse_limit(params.limit.as_deref())?;
    let after = params.after.as_deref().map(Cursor::decode).transpose()?;
    consistency.wait(&context, PROJECTION).await?;
    // Without a cursor the bound is `infinity`, above every time: one query shape, one plan.
    let records: Vec<PurchaseRecord> = sqlx::query_as(concat!(
        select_purchases!(),
        "WHERE user_id = $1 \
           AND (requested_at, purchase_id) \
               < (COALESCE($2::timestamptz, 'infinity'), COALESCE($3::uuid, '00000000-0000-0000-0000-000000000000')) \
         ORDER BY requested_at DESC, purchase_id DESC LIMIT $4"
    ))
    .bind(user_id)
    .bind(after.map(|c| c.at))
    .bind(after.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&context.pool)
    .await?;
    let items = records
        .into_iter()
        .map(Purchase::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(page(items, limit)))
}

fn page(mut items: Vec<Purchase>, limit: i64) -> Page {
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_after = more
        .then(|| {
            items.last().map(|p| {
                Cursor {
                    at: p.requested_at,
                    id: p.purchase_id,
                }
                .encode()
            })
        })
        .flatten();
    Page { items, next_after }
}

/// The user of a `/users/{user_id}/…` path, when `reader` may read that user's rows: the path is
/// then the `user_id` condition of the query. Another user is not found, whether or not it has
/// purchases, so the answer tells nothing about that user.
fn readable_user(reader: Reader, raw: &str) -> Result<Uuid, ApiError> {
    let user_id = parse_uuid("user_id", raw)?;
    if reader.may_read(user_id) {
        Ok(user_id)
    } else {
        Err(ApiError::NotFound {
            resource: "user",
            key: user_id.to_string(),
        })
    }
}

/// A user's totals per currency; a user reads only its own.
#[utoipa::path(
    get,
    path = "/api/v1/users/{user_id}/spend",
    tag = "purchases",
    params(
        ("user_id" = Uuid, Path, description = "The user's id"),
        TokenQuery,
        ("X-Consistency-Token" = Option<String>, Header,
            description = "The `consistency_token` of an earlier write, if not given as query parameter"),
    ),
    security(("bearer" = ["read"]), ("bearer" = ["read:all"])),
    responses(
        (status = 200, description = "The user's totals; none for a user without purchases.", body = Spend),
        (status = 400, response = InvalidParameter),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip(context, consistency))]
async fn spend(
    State(context): State<ApiContext>,
    reader: Reader,
    consistency: Consistency,
    Path(user_id): Path<String>,
) -> Result<Json<Spend>, ApiError> {
    let user_id = readable_user(reader, &user_id)?;
    consistency.wait(&context, PROJECTION).await?;
    let records: Vec<SpendRecord> = sqlx::query_as(
        "SELECT currency, purchases, authorized_minor, refunded_minor FROM user_spend \
         WHERE user_id = $1 ORDER BY currency",
    )
    .bind(user_id)
    .fetch_all(&context.pool)
    .await?;
    let currencies = records
        .into_iter()
        .map(CurrencySpend::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(Spend { user_id, currencies }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_the_code_cannot_read_is_a_decoding_error() {
        for (minor, code) in [(100, "XXX"), (100, "usd"), (-1, "USD")] {
            assert!(matches!(
                stored_money("amount_minor", minor, code),
                Err(sqlx::Error::ColumnDecode { ref index, .. }) if index == "amount_minor"
            ));
        }
    }
}
