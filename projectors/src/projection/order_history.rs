//! `order_history`: every event of every order, one row each, keyed by the order and the event's
//! `ce_sequence`, so an order's timeline reads back in the order its events were decided.
//!
//! Rows are only ever inserted (see [`order_history::insert`]). Order events carry no card data,
//! so each is kept whole, as it is encoded on the log.

use domain::{order, Message};
use read_models::order_history::{self, HistoryRow};
use sqlx::PgConnection;

use super::{AggregateEvent, LoggedEvent};

/// The batch's order events, in log order.
fn rows(events: &[LoggedEvent]) -> Vec<HistoryRow> {
    events
        .iter()
        .filter_map(|logged| {
            let event = order::Event::of(logged)?;
            Some(HistoryRow {
                order_id: event.order_id(),
                version: logged.version(),
                event_type: event.message_type().to_owned(),
                occurred_at: event.occurred_at(),
                // `encode` writes JSON through serde_json, which only ever writes UTF-8.
                data: String::from_utf8_lossy(&event.encode()).into_owned(),
                log_partition: Some(logged.partition),
                log_offset: Some(logged.offset),
                command_id: logged.envelope.causation_id,
                trace_id: logged.envelope.trace.trace_id(),
            })
        })
        .collect()
}

#[tracing::instrument(skip_all, fields(events = events.len()))]
pub(super) async fn apply(tx: &mut PgConnection, events: &[LoggedEvent]) -> Result<(), sqlx::Error> {
    order_history::insert(tx, rows(events)).await
}

#[tracing::instrument(skip_all, fields(events = events.len()))]
pub(super) async fn apply_bulk(tx: &mut PgConnection, events: &[LoggedEvent]) -> Result<(), sqlx::Error> {
    order_history::copy(tx, &rows(events)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::logged;
    use chrono::{DateTime, Utc};
    use domain::order::{CancelReason, OrderCancelled, OrderName, OrderPlaced};
    use domain::purchase;
    use domain::{order, Event};
    use uuid::Uuid;

    const ORDER: Uuid = Uuid::from_u128(1);

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
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
                    catalog_items: None,
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
                    stock_released: None,
                })),
            ),
        ];
        let rows = rows(&events);
        assert_eq!(
            rows.iter()
                .map(|r| (r.order_id, r.version, r.event_type.as_str(), r.occurred_at))
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
        assert_eq!((rows[1].log_partition, rows[1].command_id), (Some(0), None));
        // The data is the event as encoded on the log, so it decodes back into the same event.
        let Event::Order(placed) = &events[0].envelope.message else {
            unreachable!()
        };
        assert_eq!(
            &order::Event::decode(&rows[0].event_type, rows[0].data.as_bytes()).unwrap(),
            placed
        );
    }
}
