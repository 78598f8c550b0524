//! What the console shows at one instant: the events topic's partitions with their log end and
//! owner, the projections' status (`read_models::status`), the deciders' assignments, the
//! latest dead letters, and the log ends the rates are computed from.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rdkafka::consumer::Consumer as _;
use read_models::status::{self, DeadLetterSummary, Status};
use serde::Serialize;
use service_kit::kafka::watch::{self, Member};

use super::{Console, KafkaClient};
use crate::http::ApiError;

/// How many of the latest dead letters a snapshot lists.
const DEAD_LETTERS_LISTED: i64 = 20;

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub at: DateTime<Utc>,
    pub events_topic: String,
    pub partitions: Vec<Partition>,
    /// Commands and events appended per second since the previous snapshot; absent in the first.
    pub rates: Option<Rates>,
    /// The members of the deciders' group and the commands partitions each owns.
    pub deciders: Vec<Decider>,
    #[serde(flatten)]
    pub status: Status,
    pub dead_letters: Vec<DeadLetterSummary>,
    #[serde(skip)]
    pub(super) totals: LogTotals,
}

/// One partition of the events topic (commands share its number and its owner).
#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    pub partition: i32,
    pub log_end: i64,
    pub commands_log_end: i64,
    /// The decider instance (its client id) the group gave this partition, if any.
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Decider {
    pub instance: String,
    pub host: String,
    pub partitions: Vec<i32>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rates {
    pub commands_per_second: f64,
    /// Offsets, so each decider transaction's commit marker counts as one.
    pub events_per_second: f64,
}

/// The sums of the commands' and the events' log ends, and when they were read.
#[derive(Debug, Clone, Copy)]
pub(super) struct LogTotals {
    pub(super) commands: i64,
    pub(super) events: i64,
    pub(super) at: std::time::Instant,
}

impl LogTotals {
    /// The rates from `earlier` to these.
    pub(super) fn rates_since(&self, earlier: &LogTotals) -> Rates {
        let seconds = self.at.duration_since(earlier.at).as_secs_f64().max(0.001);
        Rates {
            commands_per_second: (self.commands - earlier.commands).max(0) as f64 / seconds,
            events_per_second: (self.events - earlier.events).max(0) as f64 / seconds,
        }
    }
}

/// What Kafka says, read in one blocking call.
struct FromKafka {
    events: BTreeMap<i32, i64>,
    commands: BTreeMap<i32, i64>,
    deciders: Vec<Member>,
}

impl Snapshot {
    /// Reads Kafka and PostgreSQL now; `previous` (the last snapshot's totals) gives the rates.
    pub(super) async fn gather(console: &Console, previous: Option<&LogTotals>) -> Result<Self, ApiError> {
        let client = Arc::clone(&console.kafka);
        let topics = Arc::clone(&console.topics);
        let group = console.decider_group.clone();
        let kafka = tokio::task::spawn_blocking(move || read_kafka(&client, &topics.events, &topics.commands, &group))
            .await
            .map_err(|_| ApiError::Blocking)??;
        let totals = LogTotals {
            commands: kafka.commands.values().sum(),
            events: kafka.events.values().sum(),
            at: std::time::Instant::now(),
        };
        let mut status = status::gather(&console.pool, &console.schema, &[], &kafka.events).await?;
        let behind = status.behind();
        let (reader, topic) = (Arc::clone(&console.kafka), console.topics.events.clone());
        let holding = tokio::task::spawn_blocking(move || {
            let reader = reader.reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            watch::holding_records(&reader, &topic, &behind)
        })
        .await
        .map_err(|_| ApiError::Blocking)??;
        status.settle(&holding);
        let dead_letters = status::latest_dead_letters(&console.pool, DEAD_LETTERS_LISTED).await?;
        let owners: BTreeMap<i32, &str> = kafka
            .deciders
            .iter()
            .flat_map(|member| member.partitions.iter().map(|&p| (p, member.client_id.as_str())))
            .collect();
        let partitions = kafka
            .events
            .iter()
            .map(|(&partition, &log_end)| Partition {
                partition,
                log_end,
                commands_log_end: kafka.commands.get(&partition).copied().unwrap_or(0),
                owner: owners.get(&partition).map(|&owner| owner.to_owned()),
            })
            .collect();
        let deciders = kafka
            .deciders
            .into_iter()
            .map(|member| Decider {
                instance: member.client_id,
                host: member.host,
                partitions: member.partitions,
            })
            .collect();
        Ok(Self {
            at: Utc::now(),
            events_topic: console.topics.events.clone(),
            partitions,
            rates: previous.map(|earlier| totals.rates_since(earlier)),
            deciders,
            status,
            dead_letters,
            totals,
        })
    }
}

fn read_kafka(kafka: &KafkaClient, events: &str, commands: &str, group: &str) -> Result<FromKafka, ApiError> {
    Ok(FromKafka {
        events: watch::log_ends(&kafka.client, events)?,
        commands: watch::log_ends(&kafka.client, commands)?,
        deciders: watch::members(kafka.client.client(), group, commands)?,
    })
}
