//! `order_history`: every event of every order, one row each, keyed by the order and the event's
//! `ce_sequence`, so an order's timeline reads back in the order its events were decided.
//!
//! Rows are only ever inserted: an event is a fact and its row never changes. A row already
//! present (a rebuild over a table that was not emptied) is left as it is, since the same
//! position of the same order always holds the same event.

use chrono::{DateTime, Utc};
use domain::{order, Event, Message};
use sqlx::PgConnection;
use uuid::Uuid;

use super::LoggedEvent;

/// One event of one order; the columns of `order_history`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HistoryRow {
    order_id: Uuid,
    version: i64,
    /// The `ce_type`, e.g. `orderstream.order.shipped.v1`.
    event_type: &'static str,
    /// The event's own time, not when the projector saw it, so a replay writes the same rows.
    occurred_at: DateTime<Utc>,
    /// The event as it is encoded on the log. Order events carry no card data, so all of it may
    /// be kept.
    data: String,
}

fn order_event(event: &LoggedEvent) -> Option<&order::Event> {
    match &event.envelope.message {
        Event::Order(order) => Some(order),
        // Other aggregates share the log; they are not orders.
        Event::Purchase(_) => None,
    }
}

/// The batch's order events, in log order.
fn rows(events: &[LoggedEvent]) -> Vec<HistoryRow> {
    events
        .iter()
        .filter_map(|logged| {
            let event = order_event(logged)?;
            Some(HistoryRow {
                order_id: event.order_id(),
                version: logged.envelope.sequence.unwrap_or(1) as i64,
                event_type: event.message_type(),
                occurred_at: event.occurred_at(),
                // `encode` writes JSON through serde_json, which only ever writes UTF-8.
                data: String::from_utf8_lossy(&event.encode()).into_owned(),
            })
        })
        .collect()
}

#[tracing::instrument(skip_all, fields(events = events.len()))]
pub(super) async fn apply(tx: &mut PgConnection, events: &[LoggedEvent]) -> Result<(), sqlx::Error> {
    let rows = rows(events);
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len();
    let mut ids = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut data = Vec::with_capacity(n);
    for row in rows {
        ids.push(row.order_id);
        versions.push(row.version);
        types.push(row.event_type);
        times.push(row.occurred_at);
        data.push(row.data);
    }
    // The JSON travels as text and is parsed by PostgreSQL into `jsonb`.
    sqlx::query(
        "INSERT INTO order_history (order_id, version, event_type, occurred_at, data) \
         SELECT order_id, version, event_type, occurred_at, data::jsonb \
         FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[]) \
              AS batch(order_id, version, event_type, occurred_at, data) \
         ON CONFLICT (order_id, version) DO NOTHING",
    )
    .bind(ids)
    .bind(versions)
    .bind(types)
    .bind(times)
    .bind(data)
    .execute(tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::order::{CancelReason, OrderCancelled, OrderName, OrderPlaced};
    use domain::purchase;
    use service_kit::kafka::Envelope;

    const ORDER: Uuid = Uuid::from_u128(1);

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn logged(sequence: u64, message: Event) -> LoggedEvent {
        LoggedEvent {
            partition: 3,
            offset: 7,
            envelope: Envelope {
                id: Uuid::new_v4(),
                // Not the event's time: rows take theirs from the event.
                time: at("2030-01-01T00:00:00Z"),
                sequence: Some(sequence),
                causation_id: None,
                correlation_id: Uuid::new_v4(),
                traceparent: None,
                message,
            },
        }
    }

    #[test]
    fn every_order_event_is_one_row_with_its_type_time_and_data() {
        let events = [
            logged(
                1,
                Event::Order(order::Event::OrderPlaced(OrderPlaced {
                    order_id: ORDER,
                    name: OrderName::parse("Zoë").unwrap(),
                    note: None,
                    placed_at: at("2025-01-19T15:04:05Z"),
                    details: None,
                    channel: order::Channel::Api,
                    user_id: None,
                })),
            ),
            logged(
                1,
                Event::Purchase(purchase::Event::PurchaseDeclined(purchase::PurchaseDeclined {
                    purchase_id: Uuid::from_u128(2),
                    reason: "card_declined".to_owned(),
                    declined_at: at("2025-01-19T15:05:00Z"),
                    order_id: None,
                    user_id: None,
                })),
            ),
            logged(
                2,
                Event::Order(order::Event::OrderCancelled(OrderCancelled {
                    order_id: ORDER,
                    reason: CancelReason::parse("duplicate").unwrap(),
                    refund_requested_for: None,
                    refund_amount: None,
                    cancelled_at: at("2025-01-19T15:06:00Z"),
                })),
            ),
        ];
        let rows = rows(&events);
        assert_eq!(
            rows.iter()
                .map(|r| (r.order_id, r.version, r.event_type, r.occurred_at))
                .collect::<Vec<_>>(),
            [
                (ORDER, 1, "orderstream.order.placed.v3", at("2025-01-19T15:04:05Z")),
                (ORDER, 2, "orderstream.order.cancelled.v1", at("2025-01-19T15:06:00Z")),
            ]
        );
        let data: serde_json::Value = serde_json::from_str(&rows[1].data).unwrap();
        assert_eq!(
            data,
            serde_json::json!({
                "order_id": ORDER,
                "reason": "duplicate",
                "cancelled_at": "2025-01-19T15:06:00Z",
            })
        );
        // The data is the event as encoded on the log, so it decodes back into the same event.
        let Event::Order(placed) = &events[0].envelope.message else {
            unreachable!()
        };
        assert_eq!(
            &order::Event::decode(rows[0].event_type, rows[0].data.as_bytes()).unwrap(),
            placed
        );
    }
}
