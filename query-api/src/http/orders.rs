//! `order_status` and `order_history`: one order as of its latest event, orders filtered and
//! newest first, and one order's timeline.
//!
//! Money leaves in the shape the purchases use, `{"value": "42.04", "minor": 4204, "currency":
//! "USD"}`: `value` has exactly the currency's decimals and is text, so no client has to
//! round-trip money through a float.

use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::order::{Channel, OrderStatus, PaymentStatus, StockStatus};
use read_models::order_history::{self, HistoryRow};
use read_models::order_status::{self, Filter, OrderStatusRow};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use service_kit::extract::{InvalidParameter, Path, Query};
use utoipa::openapi::schema::Schema;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::page::{
    found, page_of, parse_limit, parse_text, parse_uuid, query_path, quoted, stored_money, Amount, Cursor,
};
use super::reader::Read;
use super::{ApiContext, ApiError};

const PROJECTION: &str = "order_status";
const HISTORY_PROJECTION: &str = "order_history";

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

fn stock_status_schema() -> Schema {
    service_kit::openapi::string_enum(StockStatus::ALL.map(StockStatus::as_str), false)
}

fn channel_schema() -> Schema {
    service_kit::openapi::string_enum(Channel::ALL.map(Channel::as_str), false)
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
    /// Where the stock of the order's catalog items stands: `not_tracked` (no catalog item),
    /// `pending` (being reserved), `reserved`, `released` (cancelled) or `shipped`.
    #[schema(schema_with = stock_status_schema)]
    stock_status: String,
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

impl TryFrom<OrderStatusRow> for Order {
    type Error = sqlx::Error;

    fn try_from(record: OrderStatusRow) -> Result<Self, Self::Error> {
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
            stock_status: record.stock_status,
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

page_of!(OrderPage of Order);

/// The listing's query string, as sent; [`filter`] checks it.
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
    /// Only orders placed before this time (RFC 3339); later than `placed_from` when both are given.
    #[param(value_type = Option<DateTime<Utc>>)]
    placed_to: Option<String>,
    /// Items per page, 1 to 500; 50 when absent.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// The `next_after` of the previous page.
    after: Option<String>,
}

/// The listing's filters, checked. Every one is optional and they combine with AND.
fn filter(params: ListParams) -> Result<Filter, ApiError> {
    let filter = Filter {
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
        after: params.after.as_deref().map(Cursor::decode).transpose()?.map(Into::into),
    };
    // Swapped bounds would match nothing, and say nothing about why.
    if let (Some(from), Some(to)) = (filter.placed_from, filter.placed_to) {
        if to <= from {
            return Err(ApiError::InvalidParameter(InvalidParameter {
                field: "placed_to",
                detail: format!(
                    "must be later than `placed_from` ({from}): orders placed from one up to the other are asked"
                ),
            }));
        }
    }
    Ok(filter)
}

fn parse_status(raw: &str) -> Result<OrderStatus, ApiError> {
    one_of("status", OrderStatus::ALL, OrderStatus::as_str, raw)
}

fn parse_payment_status(raw: &str) -> Result<PaymentStatus, ApiError> {
    one_of("payment_status", PaymentStatus::ALL, PaymentStatus::as_str, raw)
}

/// The one of `all` named `raw`; any other name is a 400 on `field` listing the names.
fn one_of<T: Copy, const N: usize>(
    field: &'static str,
    all: [T; N],
    name: fn(T) -> &'static str,
    raw: &str,
) -> Result<T, ApiError> {
    all.into_iter()
        .find(|candidate| name(*candidate) == raw)
        .ok_or_else(|| {
            ApiError::InvalidParameter(InvalidParameter {
                field,
                detail: format!("must be one of {}, got {}", all.map(name).join(", "), quoted(raw)),
            })
        })
}

fn parse_time(field: &'static str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::InvalidParameter(InvalidParameter {
                field,
                // A `+` left unencoded in a query string arrives as a space: the likeliest mistake.
                detail: format!(
                    "must be an RFC 3339 time such as `2025-01-19T15:04:05Z` (`+` encoded as `%2B`), got {}",
                    quoted(raw)
                ),
            })
        })
}

query_path! {
    for users and staff;
    path = "/api/v1/orders/{order_id}", tag = "orders",
    params(("order_id" = Uuid, Path, description = "The order's id")),
    ok = ("The order.", Order), not_found = NotFound;
    /// One order as of its latest event; a user reads only its own.
    ///
    /// Another user's order is not found, exactly like a missing one.
    async fn by_id(read: Read, Path(order_id): Path<String>) -> Result<Json<Order>, ApiError> {
        let order_id = parse_uuid("order_id", &order_id)?;
        read.one(PROJECTION, "order", order_id, order_status::by_id(read.pool(), order_id, read.owner())).await
    }
}

query_path! {
    for users and staff;
    path = "/api/v1/orders", tag = "orders",
    summary = "Orders matching every filter given, newest first; a user's own only.",
    params(ListParams),
    ok = ("One page, newest first.", OrderPage);
    /// Newest first, in keyset pages on `(placed_at, order_id)`: stable while new orders arrive,
    /// and every page is one range scan of the index for its filter.
    async fn list(read: Read, Query(params): Query<ListParams>) -> Result<Json<OrderPage>, ApiError> {
        let filter = filter(params)?;
        read.wait(PROJECTION).await?;
        let rows = filter.page(read.pool(), read.owner()).await?;
        let items = rows.into_iter().map(Order::try_from).collect::<Result<_, _>>()?;
        Ok(Json(page(items, filter.limit)))
    }
}

/// The listing's page, continued after its last order.
fn page(items: Vec<Order>, limit: i64) -> OrderPage {
    OrderPage::of(items, limit, |order| {
        Cursor {
            at: order.placed_at,
            id: order.order_id,
        }
        .encode()
    })
}

/// An order's timeline: every event, oldest first.
#[derive(Debug, Serialize, ToSchema)]
struct History {
    order_id: Uuid,
    events: Vec<HistoryEvent>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HistoryEvent {
    version: i64,
    /// The `ce_type`, e.g. `orderstream.order.shipped.v1`.
    #[serde(rename = "type")]
    event_type: String,
    occurred_at: DateTime<Utc>,
    /// The event's data as it is on the log, passed through without a round trip through types.
    #[schema(value_type = Object)]
    data: Box<RawValue>,
}

impl TryFrom<HistoryRow> for HistoryEvent {
    type Error = sqlx::Error;

    fn try_from(record: HistoryRow) -> Result<Self, Self::Error> {
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

query_path! {
    for users and staff;
    path = "/api/v1/orders/{order_id}/history", tag = "orders",
    summary = "Every event of one order, oldest first; a user reads only its own.",
    params(("order_id" = Uuid, Path, description = "The order's id")),
    ok = ("The order's events.", History), not_found = NotFound;
    /// Every event of one order, in the order they were decided. An order has a handful of events
    /// (one per transition, plus any failed payments), so the timeline comes whole, unpaged.
    ///
    /// The owner is read from the order's own first event (`OrderPlaced`, version 1) in the same
    /// projection, so the check never waits on another projection; rows projected before orders
    /// had a top-level `user_id` hold it in their details.
    async fn history(read: Read, Path(order_id): Path<String>) -> Result<Json<History>, ApiError> {
        let order_id = parse_uuid("order_id", &order_id)?;
        read.wait(HISTORY_PROJECTION).await?;
        let rows = order_history::timeline(read.pool(), order_id, read.owner()).await?;
        let rows = found((!rows.is_empty()).then_some(rows), "order", order_id)?;
        let events = rows.into_iter().map(HistoryEvent::try_from).collect::<Result<_, _>>()?;
        Ok(Json(History { order_id, events }))
    }
}

#[cfg(test)]
mod tests;
