//! The read models and how a batch of events changes them.
//!
//! Every projection folds the events of one batch in memory first (one row change per key, not
//! per event) and writes them with one multi-row `UNNEST` upsert, through the table's module in
//! `read_models`. Rows take their times from the events, never from the clock, so a replay writes
//! identical rows.
//!
//! The log carries the events of every aggregate; each projection picks the ones it reads and
//! passes over the rest, which still count towards its checkpoint.

mod order_history;
mod order_status;
mod products;
mod purchases;
mod track_user;

use std::collections::{HashMap, HashSet};

use domain::{order, product, purchase, Event, Message};
use read_models::LatestRow;
use service_kit::kafka::Envelope;
use sqlx::PgConnection;
use tracing::warn;
use uuid::Uuid;

/// An event read from the log, with where it was read.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub partition: i32,
    pub offset: i64,
    pub envelope: Envelope<Event>,
}

impl LoggedEvent {
    /// The event's position in its aggregate (`ce_sequence`), the rows' `version`.
    fn version(&self) -> i64 {
        self.envelope.sequence.unwrap_or(1) as i64
    }
}

/// The events of one aggregate, as a projection picks them from the log it shares with the others.
trait AggregateEvent: Message {
    /// The aggregate's first event, which starts its row.
    type First;

    /// The event `logged` is, if it is one of this aggregate's.
    fn of(logged: &LoggedEvent) -> Option<&Self>;
    /// The event as its aggregate's first, if it is that.
    fn first(&self) -> Option<&Self::First>;

    /// Whether the event is its aggregate's first, which starts its row.
    fn is_first(&self) -> bool {
        self.first().is_some()
    }
}

/// Implements [`AggregateEvent`] for each aggregate's events, from the variant of [`Event`] that
/// carries them and the variant of their first event.
macro_rules! aggregate_events {
    ($($(#[$doc:meta])* $aggregate:ident($events:ty) starts with $first:ident($first_event:ty),)+) => {
        $(
            $(#[$doc])*
            impl AggregateEvent for $events {
                type First = $first_event;

                fn of(logged: &LoggedEvent) -> Option<&Self> {
                    match &logged.envelope.message {
                        Event::$aggregate(event) => Some(event),
                        _ => None,
                    }
                }

                fn first(&self) -> Option<&$first_event> {
                    match self {
                        Self::$first(first) => Some(first),
                        _ => None,
                    }
                }
            }
        )+
    };
}

aggregate_events! {
    /// Placing is an order's first event.
    Order(order::Event) starts with OrderPlaced(order::OrderPlaced),
    /// A request is its purchase's first event.
    Purchase(purchase::Event) starts with PurchaseRequested(purchase::PurchaseRequested),
    /// Its definition is a product's first event.
    Product(product::Event) starts with ProductDefined(product::ProductDefined),
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
    /// `products`: per product of the catalog, its latest state and stock.
    Products,
}

impl Projection {
    pub const ALL: [Projection; 5] = [
        Projection::TrackUser,
        Projection::OrderStatus,
        Projection::OrderHistory,
        Projection::Purchases,
        Projection::Products,
    ];

    /// The name used for checkpoints, metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::TrackUser => "track_user",
            Self::OrderStatus => "order_status",
            Self::OrderHistory => "order_history",
            Self::Purchases => "purchases",
            Self::Products => "products",
        }
    }

    /// Applies `events` inside the caller's transaction.
    pub async fn apply(self, tx: &mut PgConnection, events: &[LoggedEvent]) -> Result<(), sqlx::Error> {
        match self {
            Self::TrackUser => track_user::apply(tx, events).await,
            Self::OrderStatus => order_status::apply(tx, events).await,
            Self::OrderHistory => order_history::apply(tx, events).await,
            Self::Purchases => purchases::apply(tx, events).await,
            Self::Products => products::apply(tx, events).await,
        }
    }

    /// Applies `events` inside the caller's transaction as [`Self::apply`] does, but writes the
    /// rows the batch creates with `COPY` instead of an upsert: the bulk load of a rebuild, whose
    /// batches are large and whose tables nobody reads yet. It folds to the same rows. A value
    /// PostgreSQL refuses fails the whole batch, with no event named: the caller applies the
    /// batch with [`Self::apply`] then, which finds the events to set aside.
    pub async fn apply_bulk(self, tx: &mut PgConnection, events: &[LoggedEvent]) -> Result<(), sqlx::Error> {
        match self {
            Self::OrderStatus => order_status::apply_bulk(tx, events).await,
            Self::OrderHistory => order_history::apply_bulk(tx, events).await,
            // A batch folds to one row per name or per user and currency, so the upsert is small
            // already; purchases and products are a small share of the log.
            Self::TrackUser | Self::Purchases | Self::Products => self.apply(tx, events).await,
        }
    }
}

/// A read model of one row per aggregate, as of its latest event, folded in three steps:
/// [`to_load`] names the aggregates a batch changes but did not start (their rows are read with
/// one query), [`fold`] applies the batch's events in log order to those rows in memory, and the
/// projection writes every touched row with one upsert.
///
/// `self` gathers what the batch adds beside the rows (a purchase's spend).
trait Latest {
    type Event: AggregateEvent;
    type Row: LatestRow;

    /// The row the aggregate's first event starts.
    fn start(&mut self, first: &<Self::Event as AggregateEvent>::First, version: i64) -> Self::Row;
    /// Applies one event after the first to `row`.
    fn evolve(&mut self, row: &mut Self::Row, event: &Self::Event, version: i64);
    /// Checks that every status a stored row holds is one this code knows; a row without
    /// statuses has nothing to check.
    fn check(_row: &Self::Row) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

/// The aggregates a batch changes without having started them, in first-seen order: their rows
/// must be read from the table first. Those started in the batch begin from their first event
/// and need no read, since rows commit with the checkpoint and no first event is applied twice.
fn to_load<M: Latest>(events: &[LoggedEvent]) -> Vec<Uuid> {
    let mut started = HashSet::new();
    let mut load = Vec::new();
    for event in events.iter().filter_map(M::Event::of) {
        let id = event.aggregate_id();
        if event.is_first() {
            started.insert(id);
        } else if !started.contains(&id) && !load.contains(&id) {
            load.push(id);
        }
    }
    load
}

/// Folds a batch into `model` from the stored rows it needs, read (with one query) only when it
/// changes an aggregate it did not start; returns every row the batch touched.
async fn fold_batch<M: Latest>(
    tx: &mut PgConnection,
    model: &mut M,
    events: &[LoggedEvent],
) -> Result<HashMap<Uuid, M::Row>, sqlx::Error> {
    let loaded = load_changed::<M>(tx, events).await?;
    Ok(fold(model, loaded, events))
}

/// The rows a batch touched, as [`fold_batch`] folds them, split by whether the table held them
/// before the batch: those it did must be upserted, the others are new and can be copied.
#[derive(Debug)]
struct Touched<R> {
    stored: Vec<R>,
    new: Vec<R>,
}

/// [`fold_batch`], telling the rows the table holds from the new ones.
async fn fold_batch_touched<M: Latest>(
    tx: &mut PgConnection,
    model: &mut M,
    events: &[LoggedEvent],
) -> Result<Touched<M::Row>, sqlx::Error> {
    let loaded = load_changed::<M>(tx, events).await?;
    let stored: HashSet<Uuid> = loaded.keys().copied().collect();
    let (stored, new) = fold(model, loaded, events)
        .into_values()
        .partition(|row| stored.contains(&row.id()));
    Ok(Touched { stored, new })
}

/// The stored rows of the aggregates [`to_load`] names, checked.
async fn load_changed<M: Latest>(
    tx: &mut PgConnection,
    events: &[LoggedEvent],
) -> Result<HashMap<Uuid, M::Row>, sqlx::Error> {
    let ids = to_load::<M>(events);
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    M::Row::load(tx, &ids)
        .await?
        .into_iter()
        .map(|row| {
            M::check(&row)?;
            Ok((row.id(), row))
        })
        .collect()
}

/// A stored row that holds a value of `column` this code does not know: the table and the code
/// disagree, and the batch stops rather than guess.
fn unknown_value(column: &str, error: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(error),
    }
}

/// Applies the batch's events in log order to `loaded` (the stored rows [`to_load`] named) and
/// returns every row the batch touched.
///
/// An event at or below a row's `version` has been applied already and is passed over. An
/// aggregate's events share a partition, so they arrive here in their own order.
fn fold<M: Latest>(model: &mut M, mut loaded: HashMap<Uuid, M::Row>, events: &[LoggedEvent]) -> HashMap<Uuid, M::Row> {
    let mut rows = HashMap::new();
    for logged in events {
        let Some(event) = M::Event::of(logged) else {
            continue;
        };
        let version = logged.version();
        let id = event.aggregate_id();
        if let Some(first) = event.first() {
            rows.insert(id, model.start(first, version));
            continue;
        }
        let Some(mut row) = rows.remove(&id).or_else(|| loaded.remove(&id)) else {
            // The decider accepts nothing for an aggregate before its first event: a missing row
            // is a fact that cannot have been decided. Like `evolve`, keep going rather than
            // stall every aggregate behind it.
            warn!(aggregate_id = %id, version, event = event.message_type(), "event without its aggregate's first; skipped");
            continue;
        };
        if version > row.version() {
            model.evolve(&mut row, event, version);
        }
        rows.insert(id, row);
    }
    rows
}

/// An event as the tests hand it to a fold: at `sequence` in its aggregate, and read at a time
/// far from the event's own, since rows take theirs from the event.
#[cfg(test)]
fn logged(sequence: u64, message: Event) -> LoggedEvent {
    LoggedEvent {
        partition: 0,
        offset: 0,
        envelope: Envelope {
            id: Uuid::new_v4(),
            time: "2030-01-01T00:00:00Z".parse().expect("a time"),
            sequence: Some(sequence),
            causation_id: None,
            correlation_id: Uuid::new_v4(),
            trace: Default::default(),
            message,
        },
    }
}
