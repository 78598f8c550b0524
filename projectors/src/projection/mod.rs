//! The read models and how a batch of events changes them.
//!
//! Every projection folds the events of one batch in memory first (one row change per key, not
//! per event) and writes them with one multi-row `UNNEST` upsert. Rows take their times from the
//! events, never from the clock, so a replay writes identical rows.
//!
//! The log carries the events of every aggregate; each projection picks the ones it reads and
//! passes over the rest, which still count towards its checkpoint.

mod order_history;
mod order_status;
mod purchases;
mod track_user;

use std::collections::HashSet;

use domain::{Event, Message};
use service_kit::kafka::Envelope;
use sqlx::PgConnection;
use uuid::Uuid;

/// An event read from the log, with where it was read.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub partition: i32,
    pub offset: i64,
    pub envelope: Envelope<Event>,
}

/// Every projection this binary runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// `track_user`: per customer name, the order count and the time of the first order.
    TrackUser,
    /// `order_status`: per order, its latest state.
    OrderStatus,
    /// `order_history`: per order, every event in its own order. Its own checkpoint, so the
    /// timeline can be rebuilt (or lag) without touching `order_status`.
    OrderHistory,
    /// `purchases` and `user_spend`: per purchase, its latest state; per user and currency, the
    /// totals requested, authorized and refunded. One projection, so both move together.
    Purchases,
}

impl Projection {
    pub const ALL: [Projection; 4] = [
        Projection::TrackUser,
        Projection::OrderStatus,
        Projection::OrderHistory,
        Projection::Purchases,
    ];

    /// The name used for checkpoints, metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::TrackUser => "track_user",
            Self::OrderStatus => "order_status",
            Self::OrderHistory => "order_history",
            Self::Purchases => "purchases",
        }
    }

    /// Applies `events` inside the caller's transaction.
    pub async fn apply(self, tx: &mut PgConnection, events: &[LoggedEvent]) -> Result<(), sqlx::Error> {
        match self {
            Self::TrackUser => track_user::apply(tx, events).await,
            Self::OrderStatus => order_status::apply(tx, events).await,
            Self::OrderHistory => order_history::apply(tx, events).await,
            Self::Purchases => purchases::apply(tx, events).await,
        }
    }
}

/// The aggregates a batch changes without having created them, in first-seen order: their rows
/// must be read from the table first. Those created in the batch start from their first event
/// and need no read, since rows commit with the checkpoint and no creation is applied twice.
fn rows_to_load<'a, E: Message + 'a>(events: impl IntoIterator<Item = &'a E>, creates: fn(&E) -> bool) -> Vec<Uuid> {
    let mut created = HashSet::new();
    let mut load = Vec::new();
    for event in events {
        let id = event.aggregate_id();
        if creates(event) {
            created.insert(id);
        } else if !created.contains(&id) && !load.contains(&id) {
            load.push(id);
        }
    }
    load
}
