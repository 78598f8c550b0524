//! The catalog as the edge sees it: the latest name and price of every product, which orders take
//! their catalog items' prices from.
//!
//! The decider writes a product's catalog entry to the compacted catalog topic (keyed by SKU) in
//! the same transaction as the events that define or change it, and every edge replica reads that
//! topic whole into memory ([`KafkaCatalog::follow`]): it holds one small record per product, not
//! the events log. Before pricing an order, the edge reads the topic's high watermark and waits
//! until it has read that far ([`Catalog::entries`]), so a product whose `PUT` was answered is
//! seen by the next order, on any replica. Orders arriving together share one watermark query:
//! each waits for the first query that started after it arrived, so one query in flight serves
//! every order that came in meanwhile, and none is answered from a query older than itself.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use domain::money::Money;
use domain::pricing::Sku;
use domain::product::{self, ProductName};
use futures::future::BoxFuture;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use service_kit::kafka::KafkaArgs;
use thiserror::Error;
use tokio::sync::watch;
use tracing::{info, warn};

/// The one partition of the catalog topic: a total order of catalog changes is cheap at this size.
pub const CATALOG_PARTITION: i32 = 0;
/// How long an order waits for the catalog to catch up before it is answered 503.
const CATCH_UP: Duration = Duration::from_secs(5);
const WATERMARKS_TIMEOUT: Duration = Duration::from_secs(5);

/// What the edge knows of a product: all that pricing an order needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub sku: Sku,
    pub name: ProductName,
    pub price: Money,
}

#[derive(Debug, Error)]
pub enum CatalogError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The catalog was not read up to the head of its topic in time.
    #[error("the catalog did not catch up with its topic within {0:?}")]
    Behind(Duration),
}

/// Whether `event` changes what the catalog holds of its product.
pub(crate) fn changes_entry(event: &domain::Event) -> bool {
    matches!(
        event,
        domain::Event::Product(product::Event::ProductDefined(_) | product::Event::ProductChanged(_))
    )
}

/// The catalog record of an aggregate's new `state`, if it is a product: its key (the SKU) and
/// value.
pub(crate) fn record(state: &domain::State) -> Option<(String, Vec<u8>)> {
    let domain::State::Product(product::State::Defined(product)) = state else {
        return None;
    };
    let entry = CatalogEntry {
        sku: product.sku.clone(),
        name: product.name.clone(),
        price: product.price,
    };
    let payload = serde_json::to_vec(&entry).expect("a catalog entry serialises to JSON");
    Some((product.sku.as_str().to_owned(), payload))
}

/// The catalog entries an order's items name.
pub trait Catalog: Send + Sync + std::fmt::Debug {
    /// The entries of those of `skus` that are in the catalog, as of now.
    fn entries<'a>(&'a self, skus: &'a [Sku]) -> BoxFuture<'a, Result<HashMap<Sku, CatalogEntry>, CatalogError>>;
}

/// The catalog read from its Kafka topic.
pub struct KafkaCatalog {
    topic: String,
    entries: RwLock<HashMap<Sku, CatalogEntry>>,
    /// The next offset [`follow`](Self::follow) will read.
    position: watch::Sender<i64>,
    /// Asks for the topic's high watermark: `read_uncommitted`, so the watermark counts a
    /// transaction still being committed, which the catalog then waits for.
    watermarks: Arc<BaseConsumer>,
    /// The watermark queries orders wait for, one at a time.
    heads: Arc<Heads>,
}

/// Watermark queries shared by the orders that wait for them: an order takes a ticket, and a query
/// started after the ticket was taken answers it.
#[derive(Debug, Default)]
struct Heads {
    /// The last ticket taken, and whether a query task is running.
    asked: std::sync::Mutex<(u64, bool)>,
    /// The last ticket answered, and the head (or the error) that answered it.
    answered: watch::Sender<(u64, Option<Result<i64, KafkaError>>)>,
}

impl std::fmt::Debug for KafkaCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaCatalog")
            .field("topic", &self.topic)
            .field("position", &*self.position.borrow())
            .finish_non_exhaustive()
    }
}

impl KafkaCatalog {
    pub fn new(kafka: &KafkaArgs, topic: &str) -> Result<Self, KafkaError> {
        let watermarks: BaseConsumer = kafka
            .client_config()
            .set("group.id", kafka.group("orderstream-catalog-watermarks"))
            .set("isolation.level", "read_uncommitted")
            .create()?;
        Ok(Self {
            topic: topic.to_owned(),
            entries: RwLock::default(),
            position: watch::Sender::new(0),
            watermarks: Arc::new(watermarks),
            heads: Arc::default(),
        })
    }

    /// Reads the catalog topic from its beginning, then follows it, until an error. A record
    /// that does not decode is skipped: no record, whoever wrote it, may stop the catalog.
    pub async fn follow(&self, kafka: &KafkaArgs) -> Result<(), KafkaError> {
        let consumer: StreamConsumer = kafka
            .consumer_config("orderstream-catalog")
            .set("enable.partition.eof", "true")
            .set("fetch.wait.max.ms", "10")
            .create()?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&self.topic, CATALOG_PARTITION, Offset::Beginning)?;
        consumer.assign(&assignment)?;
        info!(topic = %self.topic, "reading the catalog");
        loop {
            match service_kit::kafka::recv(&consumer).await {
                Ok(record) => {
                    let entry = record.payload().map(serde_json::from_slice::<CatalogEntry>);
                    match entry {
                        Some(Ok(entry)) => {
                            let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                            entries.insert(entry.sku.clone(), entry);
                        }
                        _ => warn!(
                            offset = record.offset(),
                            "skipping a catalog record that does not decode"
                        ),
                    }
                    self.advance(record.offset() + 1);
                }
                // The end: the position is now past the transaction markers too.
                Err(KafkaError::PartitionEOF(_)) => {
                    let positions = consumer.position()?;
                    let at = positions
                        .find_partition(&self.topic, CATALOG_PARTITION)
                        .and_then(|p| match p.offset() {
                            Offset::Offset(at) => Some(at),
                            _ => None,
                        });
                    if let Some(at) = at {
                        self.advance(at);
                    }
                }
                Err(err) => return Err(err),
            }
        }
    }

    fn advance(&self, to: i64) {
        self.position.send_if_modified(|at| {
            let moved = to > *at;
            *at = (*at).max(to);
            moved
        });
    }

    /// The topic's high watermark, from a query that started after this call.
    async fn head(&self) -> Result<i64, KafkaError> {
        let mut answered = self.heads.answered.subscribe();
        let ticket = {
            let mut asked = self
                .heads
                .asked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            asked.0 += 1;
            if !asked.1 {
                asked.1 = true;
                let (heads, watermarks, topic) = (self.heads.clone(), self.watermarks.clone(), self.topic.clone());
                // A task of its own, so an order given up mid-query leaves the others served.
                tokio::spawn(query_heads(heads, watermarks, topic));
            }
            asked.0
        };
        let round = answered
            .wait_for(|(done, _)| *done >= ticket)
            .await
            .expect("the catalog outlives its readers");
        round.1.clone().expect("an answered round has its head")
    }
}

/// Asks for the watermark until every ticket taken is answered, one query at a time.
async fn query_heads(heads: Arc<Heads>, watermarks: Arc<BaseConsumer>, topic: String) {
    loop {
        let covers = {
            let mut asked = heads.asked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if asked.0 == heads.answered.borrow().0 {
                asked.1 = false;
                return;
            }
            asked.0
        };
        let (watermarks, topic) = (watermarks.clone(), topic.clone());
        let head = tokio::task::spawn_blocking(move || {
            service_kit::kafka::topics::watermarks(&*watermarks, &topic, CATALOG_PARTITION, WATERMARKS_TIMEOUT)
        })
        .await
        .expect("the watermark query does not panic")
        .map(|(_, high)| high);
        heads.answered.send_replace((covers, Some(head)));
    }
}

impl Catalog for KafkaCatalog {
    fn entries<'a>(&'a self, skus: &'a [Sku]) -> BoxFuture<'a, Result<HashMap<Sku, CatalogEntry>, CatalogError>> {
        Box::pin(async move {
            let head = self.head().await?;
            let mut position = self.position.subscribe();
            tokio::time::timeout(CATCH_UP, position.wait_for(|at| *at >= head))
                .await
                .map_err(|_| CatalogError::Behind(CATCH_UP))?
                .expect("the catalog outlives its readers");
            let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            Ok(skus
                .iter()
                .filter_map(|sku| entries.get(sku).map(|entry| (sku.clone(), entry.clone())))
                .collect())
        })
    }
}
