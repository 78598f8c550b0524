//! `track_user(id, name, counter, created_at)`: a new name gets counter 1, a known name
//! counter + 1, and `created_at` stays the time of the name's first order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::order;
use domain::Event;
use read_models::track_user::{self, TrackUserRow};
use sqlx::PgConnection;
use uuid::Uuid;

use super::LoggedEvent;

/// Names map to ids by UUID v5 in this namespace, so every replay assigns the same ids.
const TRACK_USER_NAMESPACE: Uuid = Uuid::from_u128(0x7472_6163_6b2d_7573_6572_2d6f_7264_7301);

/// What one batch adds to a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tally {
    orders: i64,
    first_order_at: DateTime<Utc>,
}

fn tally(events: &[LoggedEvent]) -> HashMap<&str, Tally> {
    let mut tallies: HashMap<&str, Tally> = HashMap::new();
    for event in events {
        // Other aggregates share the log; only placed orders count.
        let Event::Order(order::Event::OrderPlaced(placed)) = &event.envelope.message else {
            continue;
        };
        tallies
            .entry(placed.name.as_str())
            .and_modify(|tally| {
                tally.orders += 1;
                tally.first_order_at = tally.first_order_at.min(placed.placed_at);
            })
            .or_insert(Tally {
                orders: 1,
                first_order_at: placed.placed_at,
            });
    }
    tallies
}

#[tracing::instrument(skip_all, fields(events = events.len()))]
pub(super) async fn apply(tx: &mut PgConnection, events: &[LoggedEvent]) -> Result<(), sqlx::Error> {
    let rows = tally(events)
        .into_iter()
        .map(|(name, tally)| TrackUserRow {
            id: Uuid::new_v5(&TRACK_USER_NAMESPACE, name.as_bytes()),
            name: name.to_owned(),
            counter: tally.orders,
            created_at: tally.first_order_at,
        })
        .collect();
    track_user::add(tx, rows).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::logged;
    use domain::order::{OrderName, OrderPlaced};

    fn placed(name: &str, at: &str) -> LoggedEvent {
        logged(
            1,
            Event::Order(order::Event::OrderPlaced(OrderPlaced {
                order_id: Uuid::new_v4(),
                name: OrderName::parse(name).unwrap(),
                note: None,
                placed_at: at.parse().unwrap(),
                details: None,
                channel: order::Channel::Api,
                user_id: None,
                catalog_items: None,
            })),
        )
    }

    #[test]
    fn a_batch_folds_to_one_change_per_name_keeping_the_first_order_time() {
        let events = [
            placed("John Doe", "2025-01-19T15:04:05Z"),
            placed("Jane", "2025-01-19T16:00:00Z"),
            placed("John Doe", "2025-01-19T14:00:00Z"),
        ];
        let tallies = tally(&events);
        assert_eq!(tallies.len(), 2);
        assert_eq!(
            tallies["John Doe"],
            Tally {
                orders: 2,
                first_order_at: "2025-01-19T14:00:00Z".parse().unwrap()
            }
        );
        assert_eq!(tallies["Jane"].orders, 1);
    }
}
