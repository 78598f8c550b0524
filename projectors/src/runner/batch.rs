//! One batch of records read from the log, decoded once for every projection.

use std::collections::BTreeMap;

use domain::Event;
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use service_kit::kafka::Envelope;

use crate::dead_letter::{RawRecord, RawRecords};
use crate::projection::LoggedEvent;

/// Records read from the log for one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    /// The decoded events, in log order.
    pub(super) events: Vec<LoggedEvent>,
    /// The record each of `events` was decoded from, index for index: what a dead letter keeps.
    pub(super) records: RawRecords,
    /// The records that could not be decoded, and why.
    pub(super) undecodable: Vec<(RawRecord, service_kit::kafka::Error)>,
    /// Per partition, the offset after the batch's last record.
    pub(super) next_offsets: BTreeMap<i32, i64>,
    /// Per partition, when the batch's last record was written (ms since the epoch).
    pub(super) event_times: BTreeMap<i32, i64>,
}

impl<'a> Extend<BorrowedMessage<'a>> for Batch {
    fn extend<I: IntoIterator<Item = BorrowedMessage<'a>>>(&mut self, messages: I) {
        for message in messages {
            self.push(&message);
        }
    }
}

impl Batch {
    pub(super) fn push(&mut self, message: &BorrowedMessage<'_>) {
        self.next_offsets.insert(message.partition(), message.offset() + 1);
        if let Some(written_ms) = message.timestamp().to_millis() {
            self.event_times.insert(message.partition(), written_ms);
        }
        match Envelope::<Event>::from_kafka(message) {
            Ok(envelope) => {
                self.events.push(LoggedEvent {
                    partition: message.partition(),
                    offset: message.offset(),
                    envelope,
                });
                self.records.push(message);
            }
            Err(error) => self.undecodable.push((RawRecord::of(message), error)),
        }
    }

    /// Forgets every record, keeping the buffers for the next batch.
    pub(crate) fn clear(&mut self) {
        self.events.clear();
        self.records.clear();
        self.undecodable.clear();
        self.next_offsets.clear();
        self.event_times.clear();
    }

    /// Decodes `messages`, in log order, on two threads: decoding is most of a replay's work.
    /// `spare` is a batch to decode the second half into, left empty with its buffers kept.
    ///
    /// Each thread also releases the records it decoded: the client's memory behind a record's
    /// headers is then freed by the thread that allocated it, which the allocator does fastest.
    pub(crate) fn decode(&mut self, mut messages: Vec<BorrowedMessage<'_>>, spare: &mut Batch) {
        let second = messages.split_off(messages.len() / 2);
        std::thread::scope(|scope| {
            scope.spawn(|| second.into_iter().for_each(|message| spare.push(&message)));
            messages.into_iter().for_each(|message| self.push(&message));
        });
        self.events.append(&mut spare.events);
        self.records.append(&mut spare.records);
        self.undecodable.append(&mut spare.undecodable);
        // The second half ends later in every partition it shares with the first.
        self.next_offsets.append(&mut spare.next_offsets);
        self.event_times.append(&mut spare.event_times);
    }

    /// How many records the batch holds, decoded or not.
    pub(crate) fn len(&self) -> usize {
        self.events.len() + self.undecodable.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
