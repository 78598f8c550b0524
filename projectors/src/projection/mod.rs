//! The read models and how a batch of events changes them.
//!
//! Every projection folds the events of one batch in memory first (one row change per key, not
//! per event) and writes them with one multi-row `UNNEST` upsert. Rows take their times from the
//! events, never from the clock, so a replay writes identical rows.

mod order_status;
mod track_user;

use domain::order::Event;
use service_kit::kafka::Envelope;
use sqlx::PgConnection;

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
}

impl Projection {
    pub const ALL: [Projection; 2] = [Projection::TrackUser, Projection::OrderStatus];

    /// The name used for checkpoints, metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::TrackUser => "track_user",
            Self::OrderStatus => "order_status",
        }
    }

    /// Applies `events` inside the caller's transaction.
    pub async fn apply(self, tx: &mut PgConnection, events: &[LoggedEvent]) -> Result<(), sqlx::Error> {
        match self {
            Self::TrackUser => track_user::apply(tx, events).await,
            Self::OrderStatus => order_status::apply(tx, events).await,
        }
    }
}
