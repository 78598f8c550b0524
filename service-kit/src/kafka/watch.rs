//! What an operator reads off Kafka itself: where each partition of a topic ends, and which member
//! of a consumer group owns which partitions. `projectors status` and query-api's console both
//! read them here. Every call blocks on the broker: run it off the async workers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use super::topics::{offsets_at, partition_count};
use super::Result;

/// How long one question to the broker may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The log end (high watermark: the offset the next record gets) of every partition of `topic`,
/// asked at once ([`offsets_at`]).
pub fn log_ends<C: ConsumerContext, K: Consumer<C>>(consumer: &K, topic: &str) -> Result<BTreeMap<i32, i64>> {
    let partitions: Vec<i32> = (0..partition_count(consumer.client(), topic)? as i32).collect();
    Ok(offsets_at(consumer, topic, &partitions, Offset::End, TIMEOUT)?)
}

/// Which of `positions` (partition, offset) of `topic` have a committed record at or after the
/// offset. Between a consumer's position and the log end there may be only transaction commit
/// markers, which take offsets but are never read: such a position is at the head, though the
/// offsets say otherwise. `consumer` must read committed records only and report partition ends
/// (`enable.partition.eof`); a partition that has not answered in time counts as holding records.
pub fn holding_records(
    consumer: &BaseConsumer,
    topic: &str,
    positions: &BTreeSet<(i32, i64)>,
) -> Result<BTreeSet<(i32, i64)>> {
    let mut holding = BTreeSet::new();
    let mut left: BTreeSet<(i32, i64)> = positions.clone();
    // A partition is assigned once per round, so each round asks one position per partition.
    while !left.is_empty() {
        let mut round: BTreeMap<i32, i64> = BTreeMap::new();
        for &(partition, offset) in &left {
            round.entry(partition).or_insert(offset);
        }
        left.retain(|(partition, offset)| round.get(partition) != Some(offset));
        let mut assignment = TopicPartitionList::new();
        for (&partition, &offset) in &round {
            assignment.add_partition_offset(topic, partition, Offset::Offset(offset))?;
        }
        consumer.assign(&assignment)?;
        let deadline = Instant::now() + TIMEOUT;
        while !round.is_empty() {
            let Some(wait) = deadline.checked_duration_since(Instant::now()) else {
                holding.extend(round.iter().map(|(&p, &o)| (p, o)));
                break;
            };
            match consumer.poll(wait) {
                Some(Ok(record)) => {
                    if let Some(offset) = round.remove(&rdkafka::Message::partition(&record)) {
                        holding.insert((rdkafka::Message::partition(&record), offset));
                    }
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    round.remove(&partition);
                }
                Some(Err(error)) => return Err(error.into()),
                None => {}
            }
        }
        consumer.unassign()?;
    }
    Ok(holding)
}

/// One member of a consumer group and the partitions of one topic the group gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's `client.id`: a decider's names its instance.
    pub client_id: String,
    pub host: String,
    pub partitions: Vec<i32>,
}

/// The members of `group` with the partitions of `topic` each owns, as the group coordinator
/// last assigned them; none while the group is empty or rebalancing.
pub fn members<C: ClientContext>(client: &Client<C>, group: &str, topic: &str) -> Result<Vec<Member>> {
    let groups = client.fetch_group_list(Some(group), TIMEOUT)?;
    let mut members: Vec<Member> = groups
        .groups()
        .iter()
        .filter(|found| found.name() == group)
        .flat_map(|found| found.members())
        .map(|member| Member {
            client_id: member.client_id().to_owned(),
            host: member.client_host().to_owned(),
            partitions: member
                .assignment()
                .and_then(|bytes| assigned_partitions(bytes, topic))
                .unwrap_or_default(),
        })
        .collect();
    members.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    Ok(members)
}

/// The partitions of `topic` in a consumer protocol assignment (version, then an array of
/// topics each with an array of partitions, big-endian); `None` when the bytes are not one.
fn assigned_partitions(bytes: &[u8], topic: &str) -> Option<Vec<i32>> {
    let mut reader = Reader(bytes);
    reader.i16()?;
    let mut found = Vec::new();
    for _ in 0..reader.count()? {
        let length = usize::try_from(reader.i16()?).ok()?;
        let name = reader.take(length)?;
        for _ in 0..reader.count()? {
            let partition = reader.i32()?;
            if name == topic.as_bytes() {
                found.push(partition);
            }
        }
    }
    found.sort_unstable();
    Some(found)
}

/// Big-endian fields read off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Option<&'a [u8]> {
        if self.0.len() < length {
            return None;
        }
        let (head, rest) = self.0.split_at(length);
        self.0 = rest;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// An array's element count; a negative one (a null array) is empty.
    fn count(&mut self) -> Option<usize> {
        Some(usize::try_from(self.i32()?).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut bytes = 1i16.to_be_bytes().to_vec();
        bytes.extend((topics.len() as i32).to_be_bytes());
        for (name, partitions) in topics {
            bytes.extend((name.len() as i16).to_be_bytes());
            bytes.extend(name.as_bytes());
            bytes.extend((partitions.len() as i32).to_be_bytes());
            for partition in *partitions {
                bytes.extend(partition.to_be_bytes());
            }
        }
        // User data: a null byte array.
        bytes.extend((-1i32).to_be_bytes());
        bytes
    }

    #[test]
    fn an_assignment_yields_the_partitions_of_the_topic_asked_for() {
        let bytes = assignment(&[("other", &[0, 1]), ("t.orderstream.commands", &[7, 2, 5])]);
        assert_eq!(
            assigned_partitions(&bytes, "t.orderstream.commands"),
            Some(vec![2, 5, 7])
        );
        assert_eq!(assigned_partitions(&bytes, "missing"), Some(vec![]));
    }

    #[test]
    fn truncated_bytes_are_no_assignment_rather_than_a_panic() {
        let bytes = assignment(&[("t.orderstream.commands", &[3, 4])]);
        for cut in 0..bytes.len() - 4 {
            let parsed = assigned_partitions(&bytes[..cut], "t.orderstream.commands");
            assert_ne!(parsed, Some(vec![3, 4]), "cut at {cut}");
        }
    }
}
