//! `purchases` and `user_spend`: one purchase, a user's purchases newest first, and a user's
//! totals per currency.
//!
//! Amounts leave as `{"value": "100.50", "minor": 10050, "currency": "USD"}`: `value` has exactly
//! the currency's decimals and is text, so no client has to round-trip money through a float.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::money::{Currency, Money};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::consistency::Consistency;
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
#[derive(Debug, Serialize)]
struct Purchase {
    purchase_id: Uuid,
    user_id: Uuid,
    username: String,
    order_id: Option<Uuid>,
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
#[derive(Debug, Serialize)]
struct Card {
    brand: String,
    last4: String,
    exp_month: i32,
    exp_year: i32,
    fingerprint: String,
}

/// An amount as clients read it. `currency` is left out where the enclosing object names it.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct Amount {
    /// Exactly the currency's decimals: `"100.50"` USD, `"100"` JPY, `"1.005"` KWD.
    value: String,
    minor: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'static str>,
}

impl Amount {
    fn of(money: Money) -> Self {
        Self {
            value: money.to_decimal_string(),
            minor: money.minor(),
            currency: Some(money.currency().code()),
        }
    }

    fn without_currency(self) -> Self {
        Self { currency: None, ..self }
    }
}

/// Money from a row's minor units and currency code. The projector wrote both from checked
/// [`Money`], so a failure means the table and the code disagree (a currency dropped from the
/// table, a negative sum): a decoding error, like a column of the wrong type.
fn stored_money(column: &'static str, minor: i64, currency: &str) -> Result<Money, sqlx::Error> {
    Currency::parse("currency", currency)
        .and_then(|currency| Money::from_minor(minor, currency))
        .map_err(|invalid| sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: Box::new(invalid),
        })
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

#[derive(Debug, Serialize)]
struct Page {
    items: Vec<Purchase>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ListParams {
    limit: Option<String>,
    after: Option<String>,
}

/// A user's totals, one entry per currency they have paid in; none for an unknown user.
#[derive(Debug, Serialize)]
struct Spend {
    user_id: Uuid,
    currencies: Vec<CurrencySpend>,
}

#[derive(Debug, Serialize)]
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

/// Where a page of a user's purchases ended: its last item's `(requested_at, purchase_id)`, the
/// listing's sort key, so the next page starts right after it however many rows arrive meanwhile.
///
/// Opaque to clients: hex of the time in microseconds since the epoch (big-endian `i64`, the
/// precision PostgreSQL keeps, so it round-trips exactly) followed by the id's 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    requested_at: DateTime<Utc>,
    purchase_id: Uuid,
}

impl Cursor {
    const BYTES: usize = 8 + 16;

    fn encode(self) -> String {
        let mut bytes = Vec::with_capacity(Self::BYTES);
        bytes.extend_from_slice(&self.requested_at.timestamp_micros().to_be_bytes());
        bytes.extend_from_slice(self.purchase_id.as_bytes());
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn decode(raw: &str) -> Result<Self, ApiError> {
        let malformed = || ApiError::InvalidParameter {
            field: "after",
            detail: format!("must be a `next_after` from an earlier page, got `{raw}`"),
        };
        if raw.len() != Self::BYTES * 2 || !raw.is_ascii() {
            return Err(malformed());
        }
        let bytes = (0..raw.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&raw[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| malformed())?;
        let (micros, id) = bytes.split_at(8);
        let micros = i64::from_be_bytes(micros.try_into().map_err(|_| malformed())?);
        Ok(Self {
            requested_at: DateTime::from_timestamp_micros(micros).ok_or_else(malformed)?,
            purchase_id: Uuid::from_slice(id).map_err(|_| malformed())?,
        })
    }
}

fn parse_uuid(field: &'static str, raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::InvalidParameter {
        field,
        detail: format!("must be a UUID, got `{raw}`"),
    })
}

#[tracing::instrument(skip(context, consistency))]
async fn by_id(
    State(context): State<ApiContext>,
    consistency: Consistency,
    Path(purchase_id): Path<String>,
) -> Result<Json<Purchase>, ApiError> {
    let purchase_id = parse_uuid("purchase_id", &purchase_id)?;
    consistency.wait(&context, PROJECTION).await?;
    let record: Option<PurchaseRecord> = sqlx::query_as(concat!(select_purchases!(), "WHERE purchase_id = $1"))
        .bind(purchase_id)
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
#[tracing::instrument(skip(context, consistency))]
async fn list_for_user(
    State(context): State<ApiContext>,
    consistency: Consistency,
    Path(user_id): Path<String>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page>, ApiError> {
    let user_id = parse_uuid("user_id", &user_id)?;
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
    .bind(after.map(|c| c.requested_at))
    .bind(after.map(|c| c.purchase_id))
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
                    requested_at: p.requested_at,
                    purchase_id: p.purchase_id,
                }
                .encode()
            })
        })
        .flatten();
    Page { items, next_after }
}

#[tracing::instrument(skip(context, consistency))]
async fn spend(
    State(context): State<ApiContext>,
    consistency: Consistency,
    Path(user_id): Path<String>,
) -> Result<Json<Spend>, ApiError> {
    let user_id = parse_uuid("user_id", &user_id)?;
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

    fn after(err: ApiError) -> bool {
        matches!(err, ApiError::InvalidParameter { field: "after", .. })
    }

    #[test]
    fn a_cursor_round_trips_and_is_opaque() {
        let cursor = Cursor {
            requested_at: "2025-01-19T15:04:05.123456Z".parse().unwrap(),
            purchase_id: Uuid::from_u128(0x8daa_fe3b_0000_4000_8000_0000_0000_0001),
        };
        let encoded = cursor.encode();
        assert_eq!(encoded.len(), 48);
        assert!(encoded.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(Cursor::decode(&encoded).unwrap(), cursor);

        let before_epoch = Cursor {
            requested_at: "1969-12-31T23:59:59.999999Z".parse().unwrap(),
            purchase_id: Uuid::nil(),
        };
        assert_eq!(Cursor::decode(&before_epoch.encode()).unwrap(), before_epoch);
    }

    #[test]
    fn a_malformed_cursor_is_a_bad_after() {
        let valid = Cursor {
            requested_at: "2025-01-19T15:04:05Z".parse().unwrap(),
            purchase_id: Uuid::from_u128(7),
        }
        .encode();
        let non_hex = format!("zz{}", &valid[2..]);
        let multibyte = format!("é{}", &valid[2..]);
        // Beyond the times chrono can hold.
        let far_future = format!("7fffffffffffffff{}", &valid[16..]);
        for bad in [
            "",
            "abc",
            &valid[..46],
            format!("{valid}00").as_str(),
            non_hex.as_str(),
            multibyte.as_str(),
            far_future.as_str(),
            "2025-01-19T15:04:05Z|00000000-0000-0000-0000-000000000007",
        ] {
            assert!(after(Cursor::decode(bad).unwrap_err()), "{bad:?}");
        }
    }

    #[test]
    fn amounts_use_the_currencys_minor_unit() {
        let amount = |minor, code| Amount::of(stored_money("amount_minor", minor, code).unwrap());
        assert_eq!(
            amount(10_050, "USD"),
            Amount {
                value: "100.50".to_owned(),
                minor: 10_050,
                currency: Some("USD")
            }
        );
        assert_eq!(amount(0, "EUR").value, "0.00");
        assert_eq!(amount(5, "USD").value, "0.05");
        assert_eq!(amount(500, "JPY").value, "500");
        assert_eq!(amount(1_005, "KWD").value, "1.005");
        assert_eq!(
            serde_json::to_value(amount(10_050, "USD")).unwrap(),
            serde_json::json!({"value": "100.50", "minor": 10050, "currency": "USD"})
        );
        assert_eq!(
            serde_json::to_value(amount(10_050, "USD").without_currency()).unwrap(),
            serde_json::json!({"value": "100.50", "minor": 10050})
        );
    }

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
