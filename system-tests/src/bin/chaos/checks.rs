//! What the run proves once the load has stopped: every acknowledged command has exactly one
//! event on the log (no purchase authorized or refunded twice), the read models hold exactly
//! what was acknowledged, and every projection equals a fresh rebuild from the log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use domain::{order, purchase, Event};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use service_kit::kafka::{Envelope, KafkaArgs, Topics};
use sqlx::PgPool;
use tokio::time::Instant;
use uuid::Uuid;

use crate::load::Acknowledged;
use crate::{child, Settings};

/// The projections and the checkpoint name each keeps (as `projectors status` lists them).
const PROJECTIONS: [&str; 4] = ["track_user", "order_status", "order_history", "purchases"];
/// How long the rebuild of every projection may take.
const REBUILD_DEADLINE: Duration = Duration::from_secs(600);
/// Failures listed per check; the rest are counted.
const SHOWN: usize = 5;

/// One property and what broke it (nothing, when it holds).
#[derive(Debug)]
pub(crate) struct Check {
    pub(crate) property: String,
    pub(crate) failures: Vec<String>,
}

impl Check {
    fn new(property: impl Into<String>) -> Self {
        Self {
            property: property.into(),
            failures: Vec::new(),
        }
    }

    fn fail(&mut self, failure: impl Into<String>) {
        self.failures.push(failure.into());
    }
}

/// The checks, and how long the system took to settle after the load.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub(crate) settled_in: Duration,
    pub(crate) events_read: usize,
    pub(crate) checks: Vec<Check>,
}

/// How long reading the events log may take even when the settle deadline has passed.
const CENSUS_AT_LEAST: Duration = Duration::from_secs(30);

/// Waits for the system to settle, then runs every check against what `ledger` acknowledged.
pub(crate) async fn run(
    settings: &Settings,
    ledger: &crate::load::Ledger,
    load_stopped: Instant,
) -> anyhow::Result<Verdict> {
    let acknowledged = ledger.snapshot();
    let pool = settings.database.pool()?;
    let give_up = load_stopped + settings.settle_deadline;
    let mut checks = vec![settle_purchases(&pool, &acknowledged, give_up).await?];
    checks.push(settle_refunds(&pool, &acknowledged, give_up).await?);
    checks.push(settle_stock(&pool, &acknowledged, give_up).await?);

    let kafka = settings.kafka.clone();
    // Past the deadline (purchases that never settled), the census still gets a while: its
    // counts say what was lost.
    let left = give_up.saturating_duration_since(Instant::now()).max(CENSUS_AT_LEAST);
    let census = tokio::task::spawn_blocking(move || Census::read(&kafka, left)).await??;
    checks.push(projections_at_head(&pool, &census.ends, give_up).await?);
    let settled_in = load_stopped.elapsed();

    checks.extend(census.check(&acknowledged));
    checks.extend(read_models(&pool, &acknowledged).await?);
    checks.push(equals_rebuild(settings, &pool).await?);
    Ok(Verdict {
        settled_in,
        events_read: census.records,
        checks,
    })
}

/// Waits until every acknowledged purchase is no longer `requested` in the read model: the
/// reactor has charged it and the projection has seen the answer.
async fn settle_purchases(pool: &PgPool, acknowledged: &Acknowledged, give_up: Instant) -> anyhow::Result<Check> {
    let mut check = Check::new("every acknowledged purchase was charged and projected");
    let ids: Vec<Uuid> = acknowledged.purchases.iter().map(|p| p.purchase_id).collect();
    loop {
        let settled: i64 =
            sqlx::query_scalar("SELECT count(*) FROM purchases WHERE purchase_id = ANY($1) AND status <> 'requested'")
                .bind(&ids)
                .fetch_one(pool)
                .await?;
        if settled as usize == ids.len() {
            return Ok(check);
        }
        if Instant::now() >= give_up {
            check.fail(format!(
                "{} of {} still not settled",
                ids.len() - settled as usize,
                ids.len()
            ));
            // Which ones (and how they stand, when projected), to follow them through the logs.
            let unsettled: Vec<String> = sqlx::query_scalar(
                "SELECT id::text || ': ' || coalesce(p.status, 'no row') FROM unnest($1::uuid[]) AS id \
                 LEFT JOIN purchases p ON p.purchase_id = id \
                 WHERE p.status IS NULL OR p.status = 'requested' ORDER BY 1 LIMIT $2",
            )
            .bind(&ids)
            .bind(SHOWN as i64)
            .fetch_all(pool)
            .await?;
            unsettled
                .into_iter()
                .for_each(|purchase| check.fail(format!("  purchase {purchase}")));
            return Ok(check);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the reservation saga has settled every acknowledged order of the catalog
/// product and the projection has seen it: its stock reserved, or given back as out of stock.
async fn settle_stock(pool: &PgPool, acknowledged: &Acknowledged, give_up: Instant) -> anyhow::Result<Check> {
    let mut check = Check::new("every acknowledged catalog order reserved its stock or ran out, and was projected");
    let ids: Vec<Uuid> = acknowledged.catalog_orders.iter().map(|o| o.order_id).collect();
    loop {
        let pending: Vec<String> = sqlx::query_scalar(
            "SELECT id::text || ': ' || coalesce(o.stock_status, 'no row') FROM unnest($1::uuid[]) AS id \
             LEFT JOIN order_status o ON o.order_id = id \
             WHERE o.stock_status IS DISTINCT FROM 'reserved' AND o.stock_status IS DISTINCT FROM 'released' \
             ORDER BY 1",
        )
        .bind(&ids)
        .fetch_all(pool)
        .await?;
        if pending.is_empty() {
            return Ok(check);
        }
        if Instant::now() >= give_up {
            check.fail(format!("{} of {} still not settled", pending.len(), ids.len()));
            pending
                .into_iter()
                .take(SHOWN)
                .for_each(|order| check.fail(format!("  order {order}")));
            return Ok(check);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every acknowledged refund is paid back and projected: an acknowledged refund is
/// only requested, and the reactor has the gateway pay it back and records `PurchaseRefunded`
/// afterwards. Each purchase's refunded sum must reach what was acknowledged of it.
async fn settle_refunds(pool: &PgPool, acknowledged: &Acknowledged, give_up: Instant) -> anyhow::Result<Check> {
    let mut check = Check::new("every acknowledged refund was paid back and projected");
    let mut expected: HashMap<Uuid, i64> = HashMap::new();
    for refund in &acknowledged.refunds {
        *expected.entry(refund.purchase_id).or_default() += refund.amount_minor;
    }
    let ids: Vec<Uuid> = expected.keys().copied().collect();
    loop {
        let refunded: HashMap<Uuid, i64> = sqlx::query_as::<_, (Uuid, i64)>(
            "SELECT purchase_id, refunded_minor FROM purchases WHERE purchase_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(pool)
        .await?
        .into_iter()
        .collect();
        let short = expected
            .iter()
            .filter(|(id, sum)| refunded.get(id).copied().unwrap_or(0) < **sum)
            .count();
        if short == 0 {
            return Ok(check);
        }
        if Instant::now() >= give_up {
            check.fail(format!(
                "{short} of {} purchases still not refunded as acknowledged",
                ids.len()
            ));
            return Ok(check);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every projection's checkpoint has passed the last event of every partition.
async fn projections_at_head(pool: &PgPool, ends: &BTreeMap<i32, i64>, give_up: Instant) -> anyhow::Result<Check> {
    let mut check = Check::new("every projection reached the head of the log");
    loop {
        let rows: Vec<(String, i32, i64)> =
            sqlx::query_as("SELECT projection, partition, next_offset FROM projection_checkpoint")
                .fetch_all(pool)
                .await?;
        let at: HashMap<(String, i32), i64> = rows.into_iter().map(|(p, n, o)| ((p, n), o)).collect();
        let behind: Vec<String> = PROJECTIONS
            .iter()
            .flat_map(|projection| ends.iter().map(move |(partition, end)| (projection, partition, end)))
            .filter(|(projection, partition, end)| {
                at.get(&(projection.to_string(), **partition))
                    .is_none_or(|next| *next < **end)
            })
            .map(|(projection, partition, end)| format!("{projection} partition {partition} behind offset {end}"))
            .collect();
        if behind.is_empty() {
            return Ok(check);
        }
        if Instant::now() >= give_up {
            behind.into_iter().for_each(|b| check.fail(b));
            return Ok(check);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the events log holds about the run's aggregates, read in full with `read_committed`.
#[derive(Debug, Default)]
struct Census {
    records: usize,
    /// Per partition, the offset after its last event.
    ends: BTreeMap<i32, i64>,
    placed: HashMap<Uuid, usize>,
    requested: HashMap<Uuid, usize>,
    authorized: HashMap<Uuid, usize>,
    declined: HashMap<Uuid, usize>,
    /// Refund events per refund id, and per purchase.
    refunds: HashMap<Uuid, usize>,
    refunds_of: HashMap<Uuid, usize>,
}

impl Census {
    /// Reads every partition of the events topic up to its high watermark: an open transaction
    /// (one a killed decider left) holds a partition back until it is aborted, hence the deadline.
    fn read(kafka: &KafkaArgs, deadline: Duration) -> anyhow::Result<Self> {
        let topic = Topics::new(&kafka.topic_prefix).events;
        let consumer: BaseConsumer = kafka
            .client_config()
            .set("group.id", format!("chaos-census-{}", Uuid::new_v4().simple()))
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()?;
        let partitions = service_kit::kafka::topics::partition_count(consumer.client(), &topic)? as i32;
        let all: Vec<i32> = (0..partitions).collect();
        let high =
            service_kit::kafka::topics::offsets_at(&consumer, &topic, &all, Offset::End, Duration::from_secs(60))?;
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            assignment.add_partition_offset(&topic, partition, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let give_up = std::time::Instant::now() + deadline;
        let mut census = Self::default();
        // An empty partition has nothing to wait for.
        let mut done: HashSet<i32> = high.iter().filter(|(_, &end)| end == 0).map(|(&p, _)| p).collect();
        while done.len() < partitions as usize {
            if std::time::Instant::now() >= give_up {
                bail!("the events log was not read to its end within {deadline:?}");
            }
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(record)) => census.count(&record),
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    let position = consumer.position()?;
                    let at = position.find_partition(&topic, partition).map(|p| p.offset());
                    if let Some(Offset::Offset(at)) = at {
                        if at >= high[&partition] {
                            done.insert(partition);
                        }
                    }
                }
                Some(Err(err)) if service_kit::kafka::recv::is_transient(&err) => {}
                Some(Err(err)) => return Err(err).context("reading the events log"),
                None => {}
            }
        }
        Ok(census)
    }

    fn count(&mut self, record: &impl Message) {
        self.records += 1;
        self.ends.insert(record.partition(), record.offset() + 1);
        // The run's own events are all decodable; anything else is not the run's business.
        let Ok(envelope) = Envelope::<Event>::from_kafka(record) else {
            return;
        };
        let one_more = |counts: &mut HashMap<Uuid, usize>, id: Uuid| *counts.entry(id).or_default() += 1;
        match envelope.message {
            Event::Order(order::Event::OrderPlaced(e)) => one_more(&mut self.placed, e.order_id),
            Event::Purchase(purchase::Event::PurchaseRequested(e)) => one_more(&mut self.requested, e.purchase_id),
            Event::Purchase(purchase::Event::PurchaseAuthorized(e)) => one_more(&mut self.authorized, e.purchase_id),
            Event::Purchase(purchase::Event::PurchaseDeclined(e)) => one_more(&mut self.declined, e.purchase_id),
            Event::Purchase(purchase::Event::PurchaseRefunded(e)) => {
                one_more(&mut self.refunds, e.refund_id);
                one_more(&mut self.refunds_of, e.purchase_id);
            }
            _ => {}
        }
    }

    /// Exactly one event per acknowledged command; each purchase authorized once, never
    /// declined, and refunded exactly as often as a refund of it was acknowledged.
    fn check(&self, acknowledged: &Acknowledged) -> Vec<Check> {
        let exactly = |property: &str, counts: &HashMap<Uuid, usize>, ids: &mut dyn Iterator<Item = (Uuid, usize)>| {
            let mut check = Check::new(property);
            for (id, expected) in ids {
                let found = counts.get(&id).copied().unwrap_or(0);
                if found != expected {
                    check.fail(format!("{id}: {found} events, expected {expected}"));
                }
            }
            check
        };
        let purchases = || acknowledged.purchases.iter().map(|p| p.purchase_id);
        let mut refunds_of: HashMap<Uuid, usize> = purchases().map(|id| (id, 0)).collect();
        for refund in &acknowledged.refunds {
            *refunds_of.entry(refund.purchase_id).or_default() += 1;
        }
        vec![
            exactly(
                "every acknowledged order has exactly one OrderPlaced",
                &self.placed,
                &mut acknowledged.orders.iter().map(|o| (o.order_id, 1)),
            ),
            exactly(
                "every acknowledged purchase has exactly one PurchaseRequested",
                &self.requested,
                &mut purchases().map(|id| (id, 1)),
            ),
            exactly(
                "every purchase was charged exactly once (one PurchaseAuthorized)",
                &self.authorized,
                &mut purchases().map(|id| (id, 1)),
            ),
            exactly(
                "no purchase was declined",
                &self.declined,
                &mut purchases().map(|id| (id, 0)),
            ),
            exactly(
                "every acknowledged refund has exactly one PurchaseRefunded",
                &self.refunds,
                &mut acknowledged.refunds.iter().map(|r| (r.refund_id, 1)),
            ),
            exactly(
                "no purchase was refunded more often than asked",
                &self.refunds_of,
                &mut refunds_of.into_iter(),
            ),
        ]
    }
}

/// The read models against the ledger: `track_user` counters, one `order_status` row per order,
/// each purchase's status and refunded sum, each buyer's `user_spend`.
async fn read_models(pool: &PgPool, acknowledged: &Acknowledged) -> anyhow::Result<Vec<Check>> {
    let mut counters: BTreeMap<String, i64> = BTreeMap::new();
    for order in &acknowledged.orders {
        *counters.entry(order.name.clone()).or_default() += 1;
    }
    let names: Vec<String> = counters.keys().cloned().collect();
    let found: BTreeMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT name, counter FROM track_user WHERE name = ANY($1)")
            .bind(&names)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let mut track_user = Check::new(format!("track_user counters exact ({} names)", counters.len()));
    for (name, expected) in &counters {
        let counter = found.get(name).copied().unwrap_or(0);
        if counter != *expected {
            track_user.fail(format!("{name:?}: counter {counter}, expected {expected}"));
        }
    }

    let order_ids: Vec<Uuid> = acknowledged.orders.iter().map(|o| o.order_id).collect();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM order_status WHERE order_id = ANY($1)")
        .bind(&order_ids)
        .fetch_one(pool)
        .await?;
    let mut order_status = Check::new(format!("one order_status row per order ({})", order_ids.len()));
    if rows as usize != order_ids.len() {
        order_status.fail(format!("{rows} rows for {} orders", order_ids.len()));
    }

    let mut refunded: HashMap<Uuid, i64> = HashMap::new();
    for refund in &acknowledged.refunds {
        *refunded.entry(refund.purchase_id).or_default() += refund.amount_minor;
    }
    let purchase_ids: Vec<Uuid> = acknowledged.purchases.iter().map(|p| p.purchase_id).collect();
    let found: HashMap<Uuid, (i64, i64)> = sqlx::query_as::<_, (Uuid, i64, i64)>(
        "SELECT purchase_id, amount_minor, refunded_minor FROM purchases WHERE purchase_id = ANY($1)",
    )
    .bind(&purchase_ids)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(id, amount, refunded)| (id, (amount, refunded)))
    .collect();
    let mut purchases = Check::new(format!("purchases amounts and refunds exact ({})", purchase_ids.len()));
    let mut spend: BTreeMap<Uuid, (i64, i64, i64)> = BTreeMap::new();
    for purchase in &acknowledged.purchases {
        let expected = (
            purchase.amount_minor,
            refunded.get(&purchase.purchase_id).copied().unwrap_or(0),
        );
        match found.get(&purchase.purchase_id) {
            Some(row) if *row == expected => {}
            row => purchases.fail(format!("{}: {row:?}, expected {expected:?}", purchase.purchase_id)),
        }
        let user = spend.entry(purchase.user_id).or_default();
        *user = (user.0 + 1, user.1 + expected.0, user.2 + expected.1);
    }

    let users: Vec<Uuid> = spend.keys().copied().collect();
    let found: HashMap<Uuid, (i64, i64, i64)> = keyed(
        sqlx::query_as(
            "SELECT user_id, purchases, authorized_minor, refunded_minor FROM user_spend \
             WHERE user_id = ANY($1) AND currency = 'USD'",
        )
        .bind(&users)
        .fetch_all(pool)
        .await?,
    );
    let mut user_spend = Check::new(format!("user_spend exact ({} buyers)", users.len()));
    for (user, expected) in &spend {
        let row = found.get(user);
        if row != Some(expected) {
            user_spend.fail(format!(
                "{user}: (purchases, authorized, refunded) {row:?}, expected {expected:?}"
            ));
        }
    }
    let stock = stock_exact(pool, acknowledged).await?;
    Ok(vec![track_user, order_status, purchases, user_spend, stock])
}

/// Rows of four columns, keyed by their first.
fn keyed<K: Eq + Hash, A, B, C>(rows: Vec<(K, A, B, C)>) -> HashMap<K, (A, B, C)> {
    rows.into_iter().map(|(key, a, b, c)| (key, (a, b, c))).collect()
}

/// The catalog product's stock against what the saga was acknowledged: every unit received is
/// on hand, exactly the reserved orders' units are reserved (none twice, none lost), and every
/// order that got none was cancelled as out of stock.
async fn stock_exact(pool: &PgPool, acknowledged: &Acknowledged) -> anyhow::Result<Check> {
    let mut check = Check::new(format!(
        "stock exact ({} catalog orders)",
        acknowledged.catalog_orders.len()
    ));
    let Some(sku) = &acknowledged.sku else {
        check.fail("the catalog product was never stocked");
        return Ok(check);
    };
    let ids: Vec<Uuid> = acknowledged.catalog_orders.iter().map(|o| o.order_id).collect();
    let orders: HashMap<Uuid, (String, String, Option<String>)> = keyed(
        sqlx::query_as(
            "SELECT order_id, stock_status, status, cancel_reason FROM order_status WHERE order_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(pool)
        .await?,
    );
    let mut reserved = 0;
    let mut out_of_stock = 0;
    for order in &acknowledged.catalog_orders {
        match orders.get(&order.order_id) {
            Some((stock, _, _)) if stock == "reserved" => reserved += order.quantity,
            Some((stock, status, reason))
                if stock == "released" && status == "cancelled" && reason.as_deref() == Some("out_of_stock") =>
            {
                out_of_stock += 1;
            }
            row => check.fail(format!("order {}: {row:?}", order.order_id)),
        }
    }
    let product: Option<(i64, i64)> = sqlx::query_as("SELECT on_hand, reserved FROM products WHERE sku = $1")
        .bind(sku)
        .fetch_optional(pool)
        .await?;
    let expected = (crate::load::STOCKED, reserved);
    if product != Some(expected) {
        check.fail(format!(
            "{sku}: (on_hand, reserved) {product:?}, expected {expected:?} ({out_of_stock} orders out of stock)"
        ));
    }
    Ok(check)
}

/// Runs `projectors rebuild --all --keep-old`, which folds every projection afresh from the log
/// and swaps it in, keeping the tables the live projectors built in `<schema>__old_<time>`;
/// then compares those with the rebuilt ones row for row, and drops them.
async fn equals_rebuild(settings: &Settings, pool: &PgPool) -> anyhow::Result<Check> {
    let mut check = Check::new("every projection equals a fresh rebuild, row for row");
    let live = &settings.database.database_schema;
    let old_prefix = format!("{live}__old_");
    let kept = || async {
        sqlx::query_as::<_, (String, String)>(
            "SELECT table_schema::text, table_name::text FROM information_schema.tables \
             WHERE left(table_schema, length($1)) = $1 ORDER BY 1, 2",
        )
        .bind(&old_prefix)
        .fetch_all(pool)
        .await
    };
    let before: HashSet<(String, String)> = kept().await?.into_iter().collect();
    let mut rebuild = std::process::Command::new(&settings.projectors_bin);
    rebuild
        .args(["rebuild", "--all", "--keep-old"])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let status = child::until_exit(rebuild, REBUILD_DEADLINE).await?;
    if !status.success() {
        check.fail(format!("projectors rebuild --all failed: {status}"));
        return Ok(check);
    }
    let tables: Vec<(String, String)> = kept().await?.into_iter().filter(|t| !before.contains(t)).collect();
    if tables.is_empty() {
        check.fail("the rebuild kept no old tables to compare");
    }
    let mut schemas = HashSet::new();
    for (schema, table) in &tables {
        let (old, new) = (format!("\"{schema}\".\"{table}\""), format!("\"{live}\".\"{table}\""));
        let differing: Vec<String> = sqlx::query_scalar(&format!(
            "(SELECT 'live only: ' || row_to_json(d)::text FROM (TABLE {old} EXCEPT ALL TABLE {new}) d) \
             UNION ALL \
             (SELECT 'rebuild only: ' || row_to_json(d)::text FROM (TABLE {new} EXCEPT ALL TABLE {old}) d)"
        ))
        .fetch_all(pool)
        .await?;
        if !differing.is_empty() {
            check.fail(format!("{table}: {} rows differ", differing.len()));
            differing
                .into_iter()
                .take(SHOWN)
                .for_each(|row| check.fail(format!("  {table} {row}")));
        }
        schemas.insert(schema.clone());
    }
    for schema in schemas {
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(pool)
            .await?;
    }
    Ok(check)
}
