//! Verdicts go back to the edge that waits, not to every edge.
//!
//! Each edge reads one partition of the outcomes topic, its reply partition, and names it in a
//! header of every command it writes; the decider writes the command's verdict there. A command
//! without the header (written before edges named one), or naming a partition the topic does
//! not have, is answered on the partition of its command id, as before.
//!
//! An edge's reply partition is `REPLY_PARTITION` when set, else derived from its instance id:
//! an integer id `n` reads partition `n` modulo the partition count, so replicas numbered
//! 0, 1, 2… never share one while there are enough partitions; any other id reads the partition
//! of its hash. Two edges on one partition still get every verdict right (a waiter takes only
//! its own command's), they only read each other's.

use std::collections::{BTreeSet, HashMap};

use rdkafka::message::OwnedMessage;
use service_kit::kafka::envelope::header;
use uuid::Uuid;

/// The header naming the outcomes partition the command's edge reads.
pub const REPLY_PARTITION_HEADER: &str = "orderstream_reply_partition";

/// The outcomes partition an edge reads: `explicit` when given, else derived from `instance`.
pub fn reply_partition(explicit: Option<i32>, instance: &str, partitions: i32) -> i32 {
    let partitions = partitions.max(1);
    let chosen = explicit
        .map(i64::from)
        .or_else(|| instance.parse::<i64>().ok())
        .unwrap_or_else(|| i64::from(fnv1a(instance.as_bytes())));
    chosen.rem_euclid(i64::from(partitions)) as i32
}

/// FNV-1a, 32 bits: the same on every machine and every build, unlike the std hasher.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// Where the verdicts of one batch of commands go: per command id, the outcomes partitions
/// named by its commands (`None`: by key). Usually one; two edges sending one command id (one
/// `Idempotency-Key` from one caller) each get the verdicts, and each waiter takes its own.
#[derive(Debug, Default)]
pub struct ReplyRoutes(HashMap<Uuid, BTreeSet<Option<i32>>>);

impl ReplyRoutes {
    /// The routes named by `commands`, on an outcomes topic of `partitions` partitions.
    pub fn of<'a>(commands: impl IntoIterator<Item = &'a OwnedMessage>, partitions: i32) -> Self {
        let mut routes = Self::default();
        for command in commands {
            let Some(command_id) = header(command, "ce_id").and_then(|id| id.parse().ok()) else {
                continue;
            };
            let named = header(command, REPLY_PARTITION_HEADER)
                .and_then(|partition| partition.parse::<i32>().ok())
                .filter(|partition| (0..partitions).contains(partition));
            routes.0.entry(command_id).or_default().insert(named);
        }
        routes
    }

    /// The partitions the verdict on `command_id` goes to (`None`: by key).
    pub fn to(&self, command_id: Uuid) -> Vec<Option<i32>> {
        match self.0.get(&command_id) {
            Some(partitions) => partitions.iter().copied().collect(),
            None => vec![None],
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::{Header, OwnedHeaders, Timestamp};

    use super::*;

    fn command(id: Uuid, reply: Option<&str>) -> OwnedMessage {
        let mut headers = OwnedHeaders::new().insert(Header {
            key: "ce_id",
            value: Some(&id.to_string()),
        });
        if let Some(reply) = reply {
            headers = headers.insert(Header {
                key: REPLY_PARTITION_HEADER,
                value: Some(reply),
            });
        }
        OwnedMessage::new(
            None,
            None,
            "commands".to_owned(),
            Timestamp::NotAvailable,
            0,
            0,
            Some(headers),
        )
    }

    #[test]
    fn numbered_replicas_read_distinct_partitions_and_names_spread() {
        assert_eq!(reply_partition(None, "0", 12), 0);
        assert_eq!(reply_partition(None, "1", 12), 1);
        assert_eq!(reply_partition(None, "13", 12), 1, "fewer partitions than replicas");
        assert_eq!(reply_partition(Some(5), "1", 12), 5, "the setting wins");
        assert_eq!(
            reply_partition(Some(5), "1", 3),
            2,
            "an existing topic with fewer partitions"
        );
        let named: BTreeSet<i32> = ["edge-a:8084", "edge-b:8084", "edge-a:8094"]
            .iter()
            .map(|name| reply_partition(None, name, 12))
            .collect();
        assert!(named.len() > 1, "names all hash to one partition: {named:?}");
        assert_eq!(
            reply_partition(None, "edge-a:8084", 12),
            reply_partition(None, "edge-a:8084", 12)
        );
    }

    #[test]
    fn a_verdict_goes_where_its_commands_asked_else_by_key() {
        let (named, old, wrong, twice) = (
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            Uuid::from_u128(3),
            Uuid::from_u128(4),
        );
        let batch = [
            command(named, Some("2")),
            command(old, None),
            command(wrong, Some("7")),
            command(twice, Some("0")),
            command(twice, Some("1")),
        ];
        let routes = ReplyRoutes::of(&batch, 3);
        assert_eq!(routes.to(named), vec![Some(2)]);
        assert_eq!(routes.to(old), vec![None], "no header: by key");
        assert_eq!(routes.to(wrong), vec![None], "out of range: by key");
        assert_eq!(routes.to(twice), vec![Some(0), Some(1)], "each edge gets it");
        assert_eq!(routes.to(Uuid::from_u128(9)), vec![None]);
    }
}
