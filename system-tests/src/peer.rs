//! The peer the system benchmark compares orderstream with: the order placement of our
//! `POST /api/v1/orders`, handled in process by cqrs-es, the Rust event-sourcing library, with
//! its PostgreSQL store (postgres-es), and a view of the orders per customer name like our
//! `track_user`, updated by a query before the command returns. No HTTP and no Kafka: it shows
//! what the library's own path to a readable order costs on the same machine and database.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistedEventStore, PersistenceError, ViewContext, ViewRepository};
use cqrs_es::{Aggregate, CqrsFramework, DomainEvent, EventEnvelope, Query, View};
use domain::order::{OrderName, OrderNote};
use postgres_es::{PostgresCqrs, PostgresEventRepository, PostgresViewRepository};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::load::closed_loop;

/// How many customer names the orders of [`run`] come from, as in the benchmark's HTTP orders.
const NAMES: usize = 1000;

const EVENTS_TABLE: &str = "peer_events";
const VIEW_TABLE: &str = "peer_orders_by_name";

/// postgres-es's own schema (its `db/init.sql`) under our names. The tables are emptied so that
/// each run starts from the same state whatever ran before it in the schema.
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS peer_events (
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    sequence bigint CHECK (sequence >= 0) NOT NULL,
    event_type text NOT NULL,
    event_version text NOT NULL,
    payload json NOT NULL,
    metadata json NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE TABLE IF NOT EXISTS peer_orders_by_name (
    view_id text NOT NULL,
    version bigint CHECK (version >= 0) NOT NULL,
    payload json NOT NULL,
    PRIMARY KEY (view_id)
);
TRUNCATE peer_events, peer_orders_by_name;
";

/// What one peer run measured.
#[derive(Debug, Clone)]
pub struct PeerRun {
    pub orders: usize,
    pub elapsed: Duration,
    /// Latency of one `execute`: the event stored and the view updated.
    pub p50: Duration,
    pub p99: Duration,
    /// View updates that lost the race for their name's row to another order and were redone.
    pub view_retries: usize,
}

/// Creates the peer's tables in `pool`'s schema (or empties them), then places `orders` orders
/// from 1000 customer names with `tasks` concurrent tasks.
pub async fn run(pool: &PgPool, orders: usize, tasks: usize) -> PeerRun {
    run_over_names(pool, orders, tasks, NAMES).await
}

/// [`run`] with the orders placed under `names` names (`customer {i % names}`). With fewer
/// names than tasks, concurrent orders share a view, which is how the tests make its updates
/// conflict.
pub async fn run_over_names(pool: &PgPool, orders: usize, tasks: usize, names: usize) -> PeerRun {
    assert!(
        orders > 0 && tasks > 0 && names > 0,
        "a run needs orders, tasks and names"
    );
    sqlx::raw_sql(TABLES).execute(pool).await.expect("the peer's tables");
    let view_retries = Arc::new(AtomicUsize::new(0));
    let orders_by_name = OrdersByNameQuery {
        views: PostgresViewRepository::new(VIEW_TABLE, pool.clone()),
        retries: view_retries.clone(),
    };
    // Each order is a new aggregate of one event, so snapshots would only add writes: the store
    // never touches the snapshot table it is named, which is why none is created.
    let events = PostgresEventRepository::new(pool.clone()).with_tables(EVENTS_TABLE, "peer_snapshots");
    let cqrs: Arc<PostgresCqrs<Order>> = Arc::new(CqrsFramework::new(
        PersistedEventStore::new_event_store(events),
        vec![Box::new(orders_by_name)],
        (),
    ));
    let run = closed_loop(orders, tasks, move |i| {
        let cqrs = cqrs.clone();
        async move {
            let command = PlaceOrder {
                name: OrderName::parse(&format!("customer {}", i % names)).expect("a valid name"),
                note: Some(OrderNote::parse("bench").expect("a valid note")),
                placed_at: Utc::now(),
            };
            cqrs.execute(&Uuid::new_v4().to_string(), command)
                .await
                .expect("cqrs-es places the order");
            true
        }
    })
    .await;
    PeerRun {
        orders,
        elapsed: run.elapsed,
        p50: run.percentile(0.50),
        p99: run.percentile(0.99),
        view_retries: view_retries.load(Ordering::Relaxed),
    }
}

/// One order as cqrs-es keeps it: whether it was placed is all `handle` needs to decide.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Order {
    placed: bool,
}

/// The command our `POST /api/v1/orders` carries, its fields parsed by the same rules.
#[derive(Debug)]
struct PlaceOrder {
    name: OrderName,
    note: Option<OrderNote>,
    placed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderPlaced {
    name: OrderName,
    note: Option<OrderNote>,
    placed_at: DateTime<Utc>,
}

impl DomainEvent for OrderPlaced {
    fn event_type(&self) -> String {
        "OrderPlaced".to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Why `handle` refuses, as our decider does for an order id already used.
#[derive(Debug, thiserror::Error)]
enum Rejection {
    #[error("the order has already been placed")]
    AlreadyPlaced,
}

impl Aggregate for Order {
    const TYPE: &'static str = "order";
    type Command = PlaceOrder;
    type Event = OrderPlaced;
    type Error = Rejection;
    type Services = ();

    async fn handle(&mut self, command: PlaceOrder, _: &(), sink: &EventSink<Self>) -> Result<(), Rejection> {
        if self.placed {
            return Err(Rejection::AlreadyPlaced);
        }
        let PlaceOrder { name, note, placed_at } = command;
        sink.write(OrderPlaced { name, note, placed_at }, self).await;
        Ok(())
    }

    fn apply(&mut self, _: OrderPlaced) {
        self.placed = true;
    }
}

/// One customer name's orders, like a `track_user` row.
#[derive(Debug, Default, Serialize, Deserialize)]
struct OrdersByName {
    orders: i64,
    /// Orders of one name commit in any order, so the earliest is kept, not the first applied.
    first_order_at: Option<DateTime<Utc>>,
}

impl View<Order> for OrdersByName {
    fn update(&mut self, event: &EventEnvelope<Order>) {
        let placed_at = event.payload.placed_at;
        self.orders += 1;
        self.first_order_at = Some(self.first_order_at.map_or(placed_at, |first| first.min(placed_at)));
    }
}

/// Keeps [`OrdersByName`]. cqrs-es's `GenericQuery` keys a view by aggregate id and this one is
/// keyed by name, so it is a `Query` of its own over postgres-es's view repository.
///
/// Two orders of one name in flight at once race for its row: postgres-es versions each view and
/// refuses, as an optimistic-lock error, a write made from an older version (or a second first
/// insert). The loser reloads the view and applies its event again, as a user of the library
/// would; unlike a lock per name, that never queues orders whose names differ. Any other error
/// panics, since `dispatch` cannot return one and a lost update must not pass for a placed order.
struct OrdersByNameQuery {
    views: PostgresViewRepository<OrdersByName, Order>,
    retries: Arc<AtomicUsize>,
}

#[async_trait]
impl Query<Order> for OrdersByNameQuery {
    async fn dispatch(&self, _order_id: &str, events: &[EventEnvelope<Order>]) {
        for event in events {
            let name = event.payload.name.as_str();
            loop {
                let (mut view, context) = self
                    .views
                    .load_with_context(name)
                    .await
                    .unwrap_or_else(|error| panic!("the view of {name} did not load: {error}"))
                    .unwrap_or_else(|| (OrdersByName::default(), ViewContext::new(name.to_owned(), 0)));
                view.update(event);
                match self.views.update_view(view, context).await {
                    Ok(()) => break,
                    Err(PersistenceError::OptimisticLockError) => {
                        self.retries.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => panic!("the view of {name} was not updated: {error}"),
                }
            }
        }
    }
}
