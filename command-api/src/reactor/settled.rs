//! What the reactor must not do again: the purchases of its partitions that are already
//! authorized or declined, the refunds already recorded, and the orders whose stock is already
//! reserved, given back or shipped, further ahead on the log.
//!
//! Offsets are committed a little after the reactions, and a fresh consumer group starts at the
//! beginning of the log, so a reactor reads again requests it (or another reactor) has already
//! answered. On the first batch of a newly assigned partition it scans that partition from the
//! batch's first record — where the group resumes — to the end, reading only headers and keys
//! (and the refund id of a recorded refund), and remembers which purchases and refunds are
//! settled; their requests are then skipped. Each id is
//! forgotten again once the reactor reads the settlement itself, so in the steady state the sets
//! are empty and memory holds only what the scan found ahead.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use domain::{order, purchase};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Deserialize;
use service_kit::kafka::envelope::{header, message_type};
use service_kit::kafka::ownership::OwnershipChange;
use service_kit::kafka::KafkaArgs;
use tracing::info;
use uuid::Uuid;

use super::ReactorError;

/// Event types that settle a purchase's charge, every version ever written.
const SETTLES: [&str; 4] = [
    purchase::PURCHASE_AUTHORIZED_V2,
    purchase::PURCHASE_DECLINED_V2,
    purchase::PURCHASE_AUTHORIZED_V1,
    purchase::PURCHASE_DECLINED_V1,
];

/// Event types after which an order's stock is no longer to be reserved: every catalog item held,
/// or the order cancelled or shipped.
const SETTLES_STOCK: [&str; 3] = [
    order::ORDER_STOCK_RESERVED_V1,
    order::ORDER_CANCELLED_V1,
    order::ORDER_SHIPPED_V1,
];

/// The scan's consumer group name: it only assigns partitions, never joins or commits.
const SCAN_GROUP: &str = "orderstream-payment-reactor-scan";
/// How long a scan may go without a record or the end of a partition before it gives up (and the
/// reactor starts over with backoff): a broker that stopped answering.
const SCAN_STALL: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(200);
const WATERMARKS_TIMEOUT: Duration = Duration::from_secs(10);

/// What is settled ahead of the reactor in one partition.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Ahead {
    /// Purchases authorized or declined.
    charges: HashSet<Uuid>,
    /// Refunds recorded, by refund id.
    refunds: HashSet<Uuid>,
    /// Orders whose stock is reserved, given back or shipped.
    stock: HashSet<Uuid>,
}

impl Ahead {
    fn len(&self) -> usize {
        self.charges.len() + self.refunds.len() + self.stock.len()
    }
}

/// The settled purchases and refunds ahead of the reactor, per partition, and the partitions not
/// scanned yet.
#[derive(Debug, Default)]
pub(super) struct Settled {
    ahead: HashMap<i32, Ahead>,
    unscanned: HashSet<i32>,
}

impl Settled {
    /// Applies the rebalances since the last batch: an assigned partition is scanned again (the
    /// group may resume it anywhere), a revoked one forgotten.
    pub(super) fn follow(&mut self, changes: Vec<OwnershipChange>) {
        for change in changes {
            match change {
                OwnershipChange::Assigned(assigned) => {
                    for partition in assigned {
                        self.ahead.remove(&partition);
                        self.unscanned.insert(partition);
                    }
                }
                OwnershipChange::Revoked(revoked) => {
                    for partition in revoked {
                        self.ahead.remove(&partition);
                        self.unscanned.remove(&partition);
                    }
                }
            }
        }
    }

    /// Scans every partition of `batch` not scanned since it was assigned, from the batch's first
    /// record of it to the end of the partition. The blocking consumer runs off the async workers.
    pub(super) async fn scan_ahead(
        &mut self,
        kafka: &KafkaArgs,
        topic: &str,
        batch: &[OwnedMessage],
    ) -> Result<(), ReactorError> {
        let mut starts = BTreeMap::new();
        for message in batch.iter().filter(|m| self.unscanned.contains(&m.partition())) {
            starts.entry(message.partition()).or_insert(message.offset());
        }
        if starts.is_empty() {
            return Ok(());
        }
        let (kafka, topic) = (kafka.clone(), topic.to_owned());
        let found = tokio::task::spawn_blocking(move || scan(&kafka, &topic, &starts))
            .await
            .expect("the settled purchases scan panicked")?;
        for (partition, settled) in found {
            info!(
                partition,
                settled = settled.len(),
                "scanned ahead for settled purchases, refunds and stock"
            );
            self.unscanned.remove(&partition);
            self.ahead.insert(partition, settled);
        }
        Ok(())
    }

    /// Whether the reactor must pass over `message` because it asks again for what is already
    /// settled. Read in log order: a settlement read here is behind the reactor from now on, so it
    /// is forgotten.
    pub(super) fn passes(&mut self, message: &OwnedMessage) -> bool {
        let Some(event_type) = message_type(message) else {
            return false;
        };
        let Some(ahead) = self.ahead.get_mut(&message.partition()) else {
            return false;
        };
        match event_type {
            purchase::PURCHASE_REQUESTED_V1 => aggregate_id(message).is_some_and(|id| ahead.charges.contains(&id)),
            // The payments do not react to a placed order: only its stock reservation is passed over.
            order::ORDER_PLACED_V3 => aggregate_id(message).is_some_and(|id| ahead.stock.contains(&id)),
            settles if SETTLES_STOCK.contains(&settles) => {
                if let Some(id) = aggregate_id(message) {
                    ahead.stock.remove(&id);
                }
                false
            }
            purchase::PURCHASE_REFUND_REQUESTED_V1 => refund_id(message).is_some_and(|id| ahead.refunds.contains(&id)),
            purchase::PURCHASE_REFUNDED_V1 => {
                if let Some(id) = refund_id(message) {
                    ahead.refunds.remove(&id);
                }
                false
            }
            settles if SETTLES.contains(&settles) => {
                if let Some(id) = aggregate_id(message) {
                    ahead.charges.remove(&id);
                }
                false
            }
            _ => false,
        }
    }
}

/// The one field read of a refund's data.
#[derive(Deserialize)]
struct RefundId {
    refund_id: Uuid,
}

/// The refund a refund request or recorded refund names; `None` when its data does not say (the
/// reactor then decodes it in full and reports it).
fn refund_id(message: &impl Message) -> Option<Uuid> {
    let data: RefundId = serde_json::from_slice(message.payload()?).ok()?;
    Some(data.refund_id)
}

/// The purchase a record belongs to: its key, else its `ce_subject`.
fn aggregate_id(message: &impl Message) -> Option<Uuid> {
    let key = message.key().and_then(|key| std::str::from_utf8(key).ok());
    key.or_else(|| header(message, "ce_subject"))?.parse().ok()
}

/// Reads each partition of `starts` from its offset to its end (the last stable offset, as the
/// consumer reads committed records only) and collects the purchases and refunds settled there.
/// Blocking.
fn scan(kafka: &KafkaArgs, topic: &str, starts: &BTreeMap<i32, i64>) -> Result<HashMap<i32, Ahead>, ReactorError> {
    let consumer: BaseConsumer = kafka
        .consumer_config(SCAN_GROUP)
        .set("enable.partition.eof", "true")
        .create()?;
    let mut found: HashMap<i32, Ahead> = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    let mut open = HashSet::new();
    for (&partition, &from) in starts {
        found.entry(partition).or_default();
        let (_, high) = service_kit::kafka::topics::watermarks(&consumer, topic, partition, WATERMARKS_TIMEOUT)?;
        if from < high {
            assignment.add_partition_offset(topic, partition, Offset::Offset(from))?;
            open.insert(partition);
        }
    }
    if open.is_empty() {
        return Ok(found);
    }
    consumer.assign(&assignment)?;
    let mut progress = Instant::now();
    while !open.is_empty() {
        match consumer.poll(POLL) {
            Some(Ok(message)) => {
                progress = Instant::now();
                let ahead = found.entry(message.partition()).or_default();
                match message_type(&message) {
                    Some(purchase::PURCHASE_REFUNDED_V1) => ahead.refunds.extend(refund_id(&message)),
                    Some(settles) if SETTLES.contains(&settles) => ahead.charges.extend(aggregate_id(&message)),
                    Some(settles) if SETTLES_STOCK.contains(&settles) => ahead.stock.extend(aggregate_id(&message)),
                    _ => {}
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                progress = Instant::now();
                open.remove(&partition);
            }
            Some(Err(err)) if service_kit::kafka::recv::is_transient(&err) => {}
            Some(Err(err)) => return Err(err.into()),
            None if progress.elapsed() > SCAN_STALL => {
                return Err(ReactorError::ScanStalled {
                    topic: topic.to_owned(),
                    partition: open.iter().copied().min().unwrap_or_default(),
                    stalled: SCAN_STALL,
                })
            }
            None => {}
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use rdkafka::message::{Header, OwnedHeaders, Timestamp};

    use super::*;

    fn record(partition: i32, event_type: &str, purchase: Uuid) -> OwnedMessage {
        with_data(partition, event_type, purchase, b"{}".to_vec())
    }

    fn with_data(partition: i32, event_type: &str, purchase: Uuid, data: Vec<u8>) -> OwnedMessage {
        let headers = OwnedHeaders::new().insert(Header {
            key: "ce_type",
            value: Some(event_type),
        });
        OwnedMessage::new(
            Some(data),
            Some(purchase.to_string().into_bytes()),
            "events".to_owned(),
            Timestamp::NotAvailable,
            partition,
            0,
            Some(headers),
        )
    }

    /// A reactor that owns partition 3 and has scanned it, finding `ahead` settled there.
    fn scanned(ahead: Ahead) -> Settled {
        let mut settled = Settled::default();
        settled.follow(vec![OwnershipChange::Assigned(vec![3])]);
        settled.unscanned.remove(&3);
        settled.ahead.insert(3, ahead);
        settled
    }

    #[test]
    fn what_is_settled_ahead_is_passed_until_its_settlement_is_read() {
        let (settled_id, open_id) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let charged = Ahead {
            charges: HashSet::from([settled_id]),
            ..Ahead::default()
        };
        let stocked = Ahead {
            stock: HashSet::from([settled_id]),
            ..Ahead::default()
        };
        // (case, what the scan found ahead, the record passed over, the settlement that is not)
        for (case, ahead, first, settlement) in [
            (
                "a purchase request",
                charged,
                purchase::PURCHASE_REQUESTED_V1,
                purchase::PURCHASE_AUTHORIZED_V2,
            ),
            // A cancellation is never passed over: the payments and the saga react to it.
            (
                "an order's placing",
                stocked,
                order::ORDER_PLACED_V3,
                order::ORDER_CANCELLED_V1,
            ),
        ] {
            let mut settled = scanned(ahead);
            assert!(
                settled.passes(&record(3, first, settled_id)),
                "{case}: not acted on again"
            );
            assert!(
                !settled.passes(&record(3, first, open_id)),
                "{case}: an open one is acted on"
            );
            assert!(
                !settled.passes(&record(3, settlement, settled_id)),
                "{case}: a settlement is never passed over"
            );
            assert!(
                !settled.passes(&record(3, first, settled_id)),
                "{case}: forgotten once its settlement is behind the reactor"
            );
        }
    }

    #[test]
    fn a_reassigned_partition_is_scanned_again_and_a_revoked_one_forgotten() {
        let id = Uuid::from_u128(1);
        let mut settled = scanned(Ahead {
            charges: HashSet::from([id]),
            ..Ahead::default()
        });
        settled.follow(vec![OwnershipChange::Revoked(vec![3])]);
        assert!(!settled.passes(&record(3, purchase::PURCHASE_REQUESTED_V1, id)));
        settled.follow(vec![OwnershipChange::Assigned(vec![3, 4])]);
        assert_eq!(settled.unscanned, HashSet::from([3, 4]));
    }

    #[test]
    fn a_recorded_refund_is_not_asked_of_the_gateway_again() {
        let (purchase_id, recorded, open) = (Uuid::from_u128(1), Uuid::from_u128(5), Uuid::from_u128(6));
        let mut settled = scanned(Ahead {
            refunds: HashSet::from([recorded]),
            ..Ahead::default()
        });
        let refund = |event_type, refund_id: Uuid| {
            let data = format!(r#"{{"purchase_id":"{purchase_id}","refund_id":"{refund_id}"}}"#);
            with_data(3, event_type, purchase_id, data.into_bytes())
        };
        assert!(settled.passes(&refund(purchase::PURCHASE_REFUND_REQUESTED_V1, recorded)));
        assert!(!settled.passes(&refund(purchase::PURCHASE_REFUND_REQUESTED_V1, open)));
        assert!(!settled.passes(&refund(purchase::PURCHASE_REFUNDED_V1, recorded)));
        assert_eq!(settled.ahead[&3], Ahead::default(), "forgotten once behind the reactor");
    }
}
