//! `order_status` and `order_history`: one order as of its latest event, orders filtered and
//! newest first, and one order's timeline.
//!
//! Money leaves in the shape the purchases use, `{"value": "42.04", "minor": 4204, "currency":
//! "USD"}`: `value` has exactly the currency's decimals and is text, so no client has to
//! round-trip money through a float.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::order::{Channel, OrderStatus, PaymentStatus};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::{Postgres, QueryBuilder};
use utoipa::openapi::schema::Schema;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::consistency::{Consistency, TokenQuery};
use super::extract::{Path, Query};
use super::openapi::{Forbidden, InvalidParameter, NotFound, Unauthorized, Unavailable};
use super::page::{parse_text, parse_uuid, stored_money, Amount, Cursor};
use super::reader::Reader;
use super::track_users::parse_limit;
use super::{ApiContext, ApiError};

const PROJECTION: &str = "order_status";
const HISTORY_PROJECTION: &str = "order_history";

/// The columns [`OrderRecord`] reads, in one place for every query.
macro_rules! select_orders {
    () => {
        "SELECT order_id, name, note, status, payment_status, channel, user_id, currency, item_count, subtotal_minor, \
                tax_minor, shipping_minor, total_minor, carrier, tracking_number, cancel_reason, \
                payment_failure_reason, paid_with, placed_at, confirmed_at, processing_started_at, shipped_at, \
                delivered_at, cancelled_at, paid_at, payment_failed_at, refunded_at, updated_at, version \
         FROM order_status "
    };
}

pub(super) fn router() -> Router<ApiContext> {
    Router::new()
        .route("/api/v1/orders", get(list))
        .route("/api/v1/orders/{order_id}", get(by_id))
        .route("/api/v1/orders/{order_id}/history", get(history))
}

/// The routes' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(list, by_id, history))]
pub(super) struct OrdersApi;

fn status_schema() -> Schema {
    service_kit::openapi::string_enum(OrderStatus::ALL.map(OrderStatus::as_str), false)
}

fn payment_status_schema() -> Schema {
    service_kit::openapi::string_enum(PaymentStatus::ALL.map(PaymentStatus::as_str), false)
}

fn channel_schema() -> Schema {
    service_kit::openapi::string_enum(Channel::ALL.map(Channel::as_str), false)
}

/// An `order_status` row as stored.
#[derive(Debug, sqlx::FromRow)]
struct OrderRecord {
    order_id: Uuid,
    name: String,
    note: Option<String>,
    status: String,
    payment_status: String,
    channel: String,
    user_id: Option<Uuid>,
    currency: Option<String>,
    item_count: i32,
    subtotal_minor: Option<i64>,
    tax_minor: Option<i64>,
    shipping_minor: Option<i64>,
    total_minor: Option<i64>,
    carrier: Option<String>,
    tracking_number: Option<String>,
    cancel_reason: Option<String>,
    payment_failure_reason: Option<String>,
    paid_with: Option<Uuid>,
    placed_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    processing_started_at: Option<DateTime<Utc>>,
    shipped_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    paid_at: Option<DateTime<Utc>>,
    payment_failed_at: Option<DateTime<Utc>>,
    refunded_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    version: i64,
}

/// One order as clients see it.
#[derive(Debug, Serialize, ToSchema)]
struct Order {
    order_id: Uuid,
    name: String,
    note: Option<String>,
    #[schema(schema_with = status_schema)]
    status: String,
    #[schema(schema_with = payment_status_schema)]
    payment_status: String,
    /// Where the order was placed: `api`, `web`, `mobile` or `pos`; `api` for every order placed
    /// before orders carried a channel.
    #[schema(schema_with = channel_schema)]
    channel: String,
    user_id: Option<Uuid>,
    currency: Option<String>,
    /// The sum of the line items' quantities; 0 for an order placed without items.
    item_count: i32,
    /// `null` for an order placed without items: it has no price.
    totals: Option<Totals>,
    carrier: Option<String>,
    tracking_number: Option<String>,
    cancel_reason: Option<String>,
    payment_failure_reason: Option<String>,
    /// The purchase that paid the order; kept after a refund.
    paid_with: Option<Uuid>,
    placed_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
    timestamps: Timestamps,
}

/// What the order was priced at when it was placed, every amount in its currency.
#[derive(Debug, PartialEq, Eq, Serialize, ToSchema)]
struct Totals {
    subtotal: Amount,
    tax: Amount,
    shipping: Amount,
    total: Amount,
}

/// When each transition happened; `null` until it has.
#[derive(Debug, Serialize, ToSchema)]
struct Timestamps {
    confirmed_at: Option<DateTime<Utc>>,
    processing_started_at: Option<DateTime<Utc>>,
    shipped_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    paid_at: Option<DateTime<Utc>>,
    /// The latest failed payment.
    payment_failed_at: Option<DateTime<Utc>>,
    refunded_at: Option<DateTime<Utc>>,
}

/// An amount column that may be NULL only where the whole totals group is (orders without items).
fn stored_amount(column: &'static str, minor: Option<i64>, currency: &str) -> Result<Amount, sqlx::Error> {
    let minor = minor.ok_or_else(|| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: format!("NULL beside currency `{currency}`").into(),
    })?;
    stored_money(column, minor, currency).map(Amount::of)
}

impl TryFrom<OrderRecord> for Order {
    type Error = sqlx::Error;

    fn try_from(record: OrderRecord) -> Result<Self, Self::Error> {
        // The projector writes the currency and the four totals together, from one priced order.
        let totals = record
            .currency
            .as_deref()
            .map(|currency| {
                Ok::<_, sqlx::Error>(Totals {
                    subtotal: stored_amount("subtotal_minor", record.subtotal_minor, currency)?,
                    tax: stored_amount("tax_minor", record.tax_minor, currency)?,
                    shipping: stored_amount("shipping_minor", record.shipping_minor, currency)?,
                    total: stored_amount("total_minor", record.total_minor, currency)?,
                })
            })
            .transpose()?;
        Ok(Self {
            order_id: record.order_id,
            name: record.name,
            note: record.note,
            status: record.status,
            payment_status: record.payment_status,
            channel: record.channel,
            user_id: record.user_id,
            currency: record.currency,
            item_count: record.item_count,
            totals,
            carrier: record.carrier,
            tracking_number: record.tracking_number,
            cancel_reason: record.cancel_reason,
            payment_failure_reason: record.payment_failure_reason,
            paid_with: record.paid_with,
            placed_at: record.placed_at,
            updated_at: record.updated_at,
            version: record.version,
            timestamps: Timestamps {
                confirmed_at: record.confirmed_at,
                processing_started_at: record.processing_started_at,
                shipped_at: record.shipped_at,
                delivered_at: record.delivered_at,
                cancelled_at: record.cancelled_at,
                paid_at: record.paid_at,
                payment_failed_at: record.payment_failed_at,
                refunded_at: record.refunded_at,
            },
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OrderPage)]
struct Page {
    items: Vec<Order>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<String>,
}

/// The listing's query string, as sent; [`Filters::parse`] checks it.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Only orders in this status.
    #[param(schema_with = status_schema)]
    status: Option<String>,
    /// Only orders in this payment status.
    #[param(schema_with = payment_status_schema)]
    payment_status: Option<String>,
    /// Only this user's orders.
    #[param(value_type = Option<Uuid>)]
    user_id: Option<String>,
    /// Only orders placed under exactly this (trimmed) name.
    name: Option<String>,
    /// Only orders placed at or after this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    placed_from: Option<String>,
    /// Only orders placed before this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    placed_to: Option<String>,
    /// Items per page, 1 to 500; 50 when absent.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// The `next_after` of the previous page.
    after: Option<String>,
}

/// The listing's filters, checked. Every one is optional and they combine with AND.
#[derive(Debug, Default, PartialEq, Eq)]
struct Filters {
    status: Option<OrderStatus>,
    payment_status: Option<PaymentStatus>,
    user_id: Option<Uuid>,
    /// Exact: names are stored trimmed, as they were placed.
    name: Option<String>,
    /// Inclusive.
    placed_from: Option<DateTime<Utc>>,
    /// Exclusive, so consecutive ranges neither overlap nor leave a gap.
    placed_to: Option<DateTime<Utc>>,
    limit: i64,
    after: Option<Cursor>,
}

impl Filters {
    fn parse(params: ListParams) -> Result<Self, ApiError> {
        Ok(Self {
            status: params.status.as_deref().map(parse_status).transpose()?,
            payment_status: params.payment_status.as_deref().map(parse_payment_status).transpose()?,
            user_id: params
                .user_id
                .as_deref()
                .map(|raw| parse_uuid("user_id", raw))
                .transpose()?,
            name: params
                .name
                .map(|raw| parse_text("name", &raw).map(str::to_owned))
                .transpose()?,
            placed_from: params
                .placed_from
                .as_deref()
                .map(|raw| parse_time("placed_from", raw))
                .transpose()?,
            placed_to: params
                .placed_to
                .as_deref()
                .map(|raw| parse_time("placed_to", raw))
                .transpose()?,
            limit: parse_limit(params.limit.as_deref())?,
            after: params.after.as_deref().map(Cursor::decode).transpose()?,
        })
    }

    /// One page of the orders `reader` may see that match (and one more, to tell whether another
    /// page follows).
    ///
    /// Only the filters given become conditions, rather than one `$n IS NULL OR ...` query for
    /// all: each shape then gets a plan on the index for its filter, which a generic catch-all
    /// plan would not. A user's own orders are one more such condition.
    fn query(&self, reader: Reader) -> QueryBuilder<'_, Postgres> {
        let mut query = QueryBuilder::new(concat!(select_orders!(), "WHERE TRUE"));
        if let Some(owner) = reader.owner() {
            query.push(" AND user_id = ").push_bind(owner);
        }
        if let Some(status) = self.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(payment_status) = self.payment_status {
            query.push(" AND payment_status = ").push_bind(payment_status.as_str());
        }
        if let Some(user_id) = self.user_id {
            query.push(" AND user_id = ").push_bind(user_id);
        }
        if let Some(name) = &self.name {
            query.push(" AND name = ").push_bind(name.as_str());
        }
        if let Some(from) = self.placed_from {
            query.push(" AND placed_at >= ").push_bind(from);
        }
        if let Some(to) = self.placed_to {
            query.push(" AND placed_at < ").push_bind(to);
        }
        if let Some(after) = self.after {
            query
                .push(" AND (placed_at, order_id) < (")
                .push_bind(after.at)
                .push(", ")
                .push_bind(after.id)
                .push(")");
        }
        query
            .push(" ORDER BY placed_at DESC, order_id DESC LIMIT ")
            .push_bind(self.limit + 1);
        query
    }
}

fn parse_status(raw: &str) -> Result<OrderStatus, ApiError> {
    OrderStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == raw)
        .ok_or_else(|| ApiError::InvalidParameter {
            field: "status",
            detail: format!(
                "must be one of {}, got `{raw}`",
                listed(OrderStatus::ALL.map(OrderStatus::as_str))
            ),
        })
}

fn parse_payment_status(raw: &str) -> Result<PaymentStatus, ApiError> {
    PaymentStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == raw)
        .ok_or_else(|| ApiError::InvalidParameter {
            field: "payment_status",
            detail: format!(
                "must be one of {}, got `{raw}`",
                listed(PaymentStatus::ALL.map(PaymentStatus::as_str))
            ),
        })
}

fn listed<const N: usize>(names: [&str; N]) -> String {
    names.join(", ")
}

fn parse_time(field: &'static str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| ApiError::InvalidParameter {
            field,
            // A `+` left unencoded in a query string arrives as a space: the likeliest mistake.
            detail: format!(
                "must be an RFC 3339 time such as `2025-01-19T15:04:05Z` (`+` encoded as `%2B`), got `{raw}`"
            ),
        })
}

/// One order as of its latest event; a user reads only its own.
///
/// Another user's order is not found, exactly like a missing one.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{order_id}",
    tag = "orders",
    params(
        ("order_id" = Uuid, Path, description = "The order's id"),
        TokenQuery,
        ("X-Consistency-Token" = Option<String>, Header,
            description = "The `consistency_token` of an earlier write, if not given as query parameter"),
    ),
    security(("bearer" = ["read"]), ("bearer" = ["read:all"])),
    responses(
        (status = 200, description = "The order.", body = Order),
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
    Path(order_id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    let order_id = parse_uuid("order_id", &order_id)?;
    consistency.wait(&context, PROJECTION).await?;
    let record: Option<OrderRecord> = sqlx::query_as(concat!(
        select_orders!(),
        "WHERE order_id = $1 AND ($2::uuid IS NULL OR user_id = $2)"
    ))
    .bind(order_id)
    .bind(reader.owner())
    .fetch_optional(&context.pool)
    .await?;
    let record = record.ok_or(ApiError::NotFound {
        resource: "order",
        key: order_id.to_string(),
    })?;
    Ok(Json(Order::try_from(record)?))
}

/// Newest first, in keyset pages on `(placed_at, order_id)`: stable while new orders arrive, and
/// every page is one range scan of the index for its filter.
#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = "orders",
    summary = "Orders matching every filter given, newest first; a user's own only.",
    params(
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
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip(context, consistency))]
async fn list(
    State(context): State<ApiContext>,
    reader: Reader,
    consistency: Consistency,
    Query(params): Query<ListParams>,
) -> Result<Json<Page>, ApiError> {
    let filters = Filters::parse(params)?;
    consistency.wait(&context, PROJECTION).await?;
    let records: Vec<OrderRecord> = filters.query(reader).build_query_as().fetch_all(&context.pool).await?;
    let items = records
        .into_iter()
        .map(Order::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(page(items, filters.limit)))
}

fn page(mut items: Vec<Order>, limit: i64) -> Page {
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_after = more
        .then(|| {
            items.last().map(|o| {
                Cursor {
                    at: o.placed_at,
                    id: o.order_id,
                }
                .encode()
            })
        })
        .flatten();
    Page { items, next_after }
}

/// An order's timeline: every event, oldest first.
#[derive(Debug, Serialize, ToSchema)]
struct History {
    order_id: Uuid,
    events: Vec<HistoryEvent>,
}

#[derive(Debug, Serialize, ToSchema)]
struct HistoryEvent {
    version: i64,
    /// The `ce_type`, e.g. `orderstream.order.shipped.v1`.
    #[serde(rename = "type")]
    event_type: String,
    occurred_at: DateTime<Utc>,
    /// The event's data as it is on the log, passed through without a round trip through types.
    #[schema(value_type = Object)]
    data: Box<RawValue>,
}

#[derive(Debug, sqlx::FromRow)]
struct HistoryRecord {
    version: i64,
    event_type: String,
    occurred_at: DateTime<Utc>,
    data: String,
}

impl TryFrom<HistoryRecord> for HistoryEvent {
    type Error = sqlx::Error;

    fn try_from(record: HistoryRecord) -> Result<Self, Self::Error> {
        let data = RawValue::from_string(record.data).map_err(|err| sqlx::Error::ColumnDecode {
            index: "data".to_owned(),
            source: Box::new(err),
        })?;
        Ok(Self {
            version: record.version,
            event_type: record.event_type,
            occurred_at: record.occurred_at,
            data,
        })
    }
}

/// Every event of one order, in the order they were decided. An order has a handful of events
/// (one per transition, plus any failed payments), so the timeline comes whole, unpaged.
///
/// The owner is read from the order's own first event (`OrderPlaced`, version 1) in the same
/// projection, so the check never waits on another projection; rows projected before orders
/// had a top-level `user_id` hold it in their details.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{order_id}/history",
    tag = "orders",
    summary = "Every event of one order, oldest first; a user reads only its own.",
    params(
        ("order_id" = Uuid, Path, description = "The order's id"),
        TokenQuery,
        ("X-Consistency-Token" = Option<String>, Header,
            description = "The `consistency_token` of an earlier write, if not given as query parameter"),
    ),
    security(("bearer" = ["read"]), ("bearer" = ["read:all"])),
    responses(
        (status = 200, description = "The order's events.", body = History),
        (status = 400, response = InvalidParameter),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip(context, consistency))]
async fn history(
    State(context): State<ApiContext>,
    reader: Reader,
    consistency: Consistency,
    Path(order_id): Path<String>,
) -> Result<Json<History>, ApiError> {
    let order_id = parse_uuid("order_id", &order_id)?;
    consistency.wait(&context, HISTORY_PROJECTION).await?;
    // `jsonb` as text: the JSON is passed through, never decoded here.
    let records: Vec<HistoryRecord> = sqlx::query_as(
        "SELECT version, event_type, occurred_at, data::text AS data FROM order_history \
         WHERE order_id = $1 \
           AND ($2::uuid IS NULL OR EXISTS ( \
               SELECT 1 FROM order_history placed \
               WHERE placed.order_id = $1 AND placed.version = 1 \
                 AND COALESCE(placed.data ->> 'user_id', placed.data #>> '{details,user_id}') = $2::text)) \
         ORDER BY version",
    )
    .bind(order_id)
    .bind(reader.owner())
    .fetch_all(&context.pool)
    .await?;
    if records.is_empty() {
        return Err(ApiError::NotFound {
            resource: "order",
            key: order_id.to_string(),
        });
    }
    let events = records
        .into_iter()
        .map(HistoryEvent::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(History { order_id, events }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(err: ApiError) -> &'static str {
        match err {
            ApiError::InvalidParameter { field, .. } => field,
            other => panic!("not a bad parameter: {other:?}"),
        }
    }

    fn record() -> OrderRecord {
        OrderRecord {
            order_id: Uuid::from_u128(1),
            name: "Jane Doe".to_owned(),
            note: None,
            status: "shipped".to_owned(),
            payment_status: "paid".to_owned(),
            channel: "web".to_owned(),
            user_id: Some(Uuid::from_u128(2)),
            currency: Some("USD".to_owned()),
            item_count: 3,
            subtotal_minor: Some(2_968),
            tax_minor: Some(237),
            shipping_minor: Some(999),
            total_minor: Some(4_204),
            carrier: Some("UPS".to_owned()),
            tracking_number: Some("1Z999".to_owned()),
            cancel_reason: None,
            payment_failure_reason: None,
            paid_with: Some(Uuid::from_u128(3)),
            placed_at: "2025-01-19T15:04:05Z".parse().unwrap(),
            confirmed_at: Some("2025-01-19T15:05:05Z".parse().unwrap()),
            processing_started_at: Some("2025-01-19T15:06:05Z".parse().unwrap()),
            shipped_at: Some("2025-01-19T15:07:05Z".parse().unwrap()),
            delivered_at: None,
            cancelled_at: None,
            paid_at: Some("2025-01-19T15:05:30Z".parse().unwrap()),
            payment_failed_at: None,
            refunded_at: None,
            updated_at: "2025-01-19T15:07:05Z".parse().unwrap(),
            version: 5,
        }
    }

    #[test]
    fn an_order_reads_with_its_totals_and_timestamps() {
        let json = serde_json::to_value(Order::try_from(record()).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "order_id": Uuid::from_u128(1),
                "name": "Jane Doe",
                "note": null,
                "status": "shipped",
                "payment_status": "paid",
                "channel": "web",
                "user_id": Uuid::from_u128(2),
                "currency": "USD",
                "item_count": 3,
                "totals": {
                    "subtotal": {"value": "29.68", "minor": 2968, "currency": "USD"},
                    "tax": {"value": "2.37", "minor": 237, "currency": "USD"},
                    "shipping": {"value": "9.99", "minor": 999, "currency": "USD"},
                    "total": {"value": "42.04", "minor": 4204, "currency": "USD"},
                },
                "carrier": "UPS",
                "tracking_number": "1Z999",
                "cancel_reason": null,
                "payment_failure_reason": null,
                "paid_with": Uuid::from_u128(3),
                "placed_at": "2025-01-19T15:04:05Z",
                "updated_at": "2025-01-19T15:07:05Z",
                "version": 5,
                "timestamps": {
                    "confirmed_at": "2025-01-19T15:05:05Z",
                    "processing_started_at": "2025-01-19T15:06:05Z",
                    "shipped_at": "2025-01-19T15:07:05Z",
                    "delivered_at": null,
                    "cancelled_at": null,
                    "paid_at": "2025-01-19T15:05:30Z",
                    "payment_failed_at": null,
                    "refunded_at": null,
                },
            })
        );
    }

    #[test]
    fn an_order_without_items_has_null_totals() {
        let unpriced = OrderRecord {
            currency: None,
            subtotal_minor: None,
            tax_minor: None,
            shipping_minor: None,
            total_minor: None,
            item_count: 0,
            user_id: None,
            ..record()
        };
        let json = serde_json::to_value(Order::try_from(unpriced).unwrap()).unwrap();
        assert_eq!(
            (&json["totals"], &json["currency"], &json["item_count"]),
            (
                &serde_json::Value::Null,
                &serde_json::Value::Null,
                &serde_json::json!(0)
            )
        );
    }

    #[test]
    fn totals_the_code_cannot_read_are_a_decoding_error() {
        for broken in [
            OrderRecord {
                tax_minor: None,
                ..record()
            },
            OrderRecord {
                currency: Some("XXX".to_owned()),
                ..record()
            },
            OrderRecord {
                total_minor: Some(-1),
                ..record()
            },
        ] {
            assert!(matches!(Order::try_from(broken), Err(sqlx::Error::ColumnDecode { .. })));
        }
    }

    #[test]
    fn filters_are_checked_and_name_the_parameter_at_fault() {
        let params = |set: fn(&mut ListParams)| {
            let mut params = ListParams::default();
            set(&mut params);
            params
        };
        assert_eq!(
            Filters::parse(ListParams::default()).unwrap(),
            Filters {
                limit: 50,
                ..Filters::default()
            }
        );
        let all = Filters::parse(ListParams {
            status: Some("cancelled".to_owned()),
            payment_status: Some("refunded".to_owned()),
            user_id: Some("00000000-0000-0000-0000-000000000002".to_owned()),
            name: Some("Jane Doe".to_owned()),
            placed_from: Some("2025-01-19T16:04:05+01:00".to_owned()),
            placed_to: Some("2025-01-20T00:00:00Z".to_owned()),
            limit: Some("10".to_owned()),
            after: None,
        })
        .unwrap();
        assert_eq!(
            all,
            Filters {
                status: Some(OrderStatus::Cancelled),
                payment_status: Some(PaymentStatus::Refunded),
                user_id: Some(Uuid::from_u128(2)),
                name: Some("Jane Doe".to_owned()),
                placed_from: Some("2025-01-19T15:04:05Z".parse().unwrap()),
                placed_to: Some("2025-01-20T00:00:00Z".parse().unwrap()),
                limit: 10,
                after: None,
            }
        );
        for (bad, expected) in [
            (params(|p| p.status = Some("Pending".to_owned())), "status"),
            (params(|p| p.status = Some("paid".to_owned())), "status"),
            (
                params(|p| p.payment_status = Some("authorized".to_owned())),
                "payment_status",
            ),
            (params(|p| p.user_id = Some("42".to_owned())), "user_id"),
            (params(|p| p.placed_from = Some("2025-01-19".to_owned())), "placed_from"),
            (
                params(|p| p.placed_to = Some("2025-01-19T16:04:05 01:00".to_owned())),
                "placed_to",
            ),
            (params(|p| p.limit = Some("0".to_owned())), "limit"),
            (params(|p| p.after = Some("garbage".to_owned())), "after"),
        ] {
            assert_eq!(field(Filters::parse(bad).unwrap_err()), expected);
        }
        let detail = Filters::parse(params(|p| p.status = Some("lost".to_owned())))
            .unwrap_err()
            .to_string();
        assert_eq!(
            detail,
            "`status`: must be one of pending, confirmed, processing, shipped, delivered, cancelled, got `lost`"
        );
    }

    #[test]
    fn only_the_filters_given_become_conditions() {
        let none = Filters {
            limit: 50,
            ..Filters::default()
        };
        assert!(none
            .query(Reader::Everyone)
            .sql()
            .ends_with("FROM order_status WHERE TRUE ORDER BY placed_at DESC, order_id DESC LIMIT $1"));
        let some = Filters {
            status: Some(OrderStatus::Shipped),
            placed_to: Some("2025-01-20T00:00:00Z".parse().unwrap()),
            after: Some(Cursor {
                at: "2025-01-19T15:04:05Z".parse().unwrap(),
                id: Uuid::from_u128(9),
            }),
            limit: 2,
            ..Filters::default()
        };
        assert!(some.query(Reader::Everyone).sql().ends_with(
            "WHERE TRUE AND status = $1 AND placed_at < $2 AND (placed_at, order_id) < ($3, $4) \
             ORDER BY placed_at DESC, order_id DESC LIMIT $5"
        ));
        // A user's listing is always limited to its own orders, whatever else it filters on.
        let own = Filters {
            user_id: Some(Uuid::from_u128(2)),
            limit: 2,
            ..Filters::default()
        };
        assert!(own
            .query(Reader::Owner(Uuid::from_u128(1)))
            .sql()
            .ends_with("WHERE TRUE AND user_id = $1 AND user_id = $2 ORDER BY placed_at DESC, order_id DESC LIMIT $3"));
    }

    #[test]
    fn a_cursor_round_trips_and_a_malformed_one_is_a_bad_after() {
        let cursor = Cursor {
            at: "2025-01-19T15:04:05.123456Z".parse().unwrap(),
            id: Uuid::from_u128(0x8daa_fe3b_0000_4000_8000_0000_0000_0001),
        };
        let encoded = cursor.encode();
        assert_eq!(encoded.len(), 48);
        assert!(encoded.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(Cursor::decode(&encoded).unwrap(), cursor);
        let non_hex = format!("zz{}", &encoded[2..]);
        let far_future = format!("7fffffffffffffff{}", &encoded[16..]);
        for bad in ["", "abc", &encoded[..46], non_hex.as_str(), far_future.as_str()] {
            assert_eq!(field(Cursor::decode(bad).unwrap_err()), "after", "{bad:?}");
        }
    }

    #[test]
    fn a_page_says_where_the_next_starts_only_when_there_is_one() {
        let order = |n: u128| {
            Order::try_from(OrderRecord {
                order_id: Uuid::from_u128(n),
                ..record()
            })
            .unwrap()
        };
        let full = page(vec![order(3), order(2), order(1)], 2);
        assert_eq!(full.items.len(), 2);
        let next = Cursor::decode(full.next_after.as_deref().unwrap()).unwrap();
        assert_eq!(next.id, Uuid::from_u128(2));
        let last = page(vec![order(3), order(2)], 2);
        assert_eq!((last.items.len(), last.next_after), (2, None));
    }

    #[test]
    fn history_data_passes_through_as_json() {
        let event = HistoryEvent::try_from(HistoryRecord {
            version: 2,
            event_type: "orderstream.order.confirmed.v1".to_owned(),
            occurred_at: "2025-01-19T15:05:05Z".parse().unwrap(),
            data: r#"{"order_id": "00000000-0000-0000-0000-000000000001", "confirmed_at": "2025-01-19T15:05:05Z"}"#
                .to_owned(),
        })
        .unwrap();
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({
                "version": 2,
                "type": "orderstream.order.confirmed.v1",
                "occurred_at": "2025-01-19T15:05:05Z",
                "data": {"order_id": "00000000-0000-0000-0000-000000000001", "confirmed_at": "2025-01-19T15:05:05Z"},
            })
        );
    }
}
