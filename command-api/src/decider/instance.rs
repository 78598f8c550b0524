//! Each decider's identity: unique per replica without hand configuration, and refused when a
//! live replica already has it.
//!
//! The instance id names the transactional id (a restarted replica fences its own zombie), the
//! consumer's `client.id` and the local store's file. Two live replicas with one id would fence
//! each other's transactions in turn, so a decider joins only after checking that no member of
//! its consumer group carries its client id. A member left behind by a replica that was killed
//! stays in the group until its session times out; so a namesake is waited on for a session
//! timeout and more before the start is refused: a dead one is gone by then, a live one is not.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use service_kit::kafka::KafkaArgs;
use thiserror::Error;
use tracing::warn;

use super::{blocking, DeciderError};

/// How long a namesake may stay in the group before the start is refused: the decider's session
/// timeout and a margin for the coordinator to notice.
const NAMESAKE_PATIENCE: Duration = Duration::from_secs(15);
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Another live replica already decides under this instance id.
#[derive(Debug, Error)]
#[error(
    "another live decider in group `{group}` already uses client id `{client_id}`: give each replica \
     its own DECIDER_INSTANCE_ID (or leave it unset to derive one from the pod or host name and the port)"
)]
pub struct DuplicateInstance {
    pub group: String,
    pub client_id: String,
}

/// The instance id of a replica named `host` listening on `port`: unique per replica as long as
/// host names (pod names) are, and the same across restarts of the same replica.
pub fn instance_id(host: &str, port: u16) -> String {
    format!("{host}-{port}")
}

/// This machine's host name (in Kubernetes, the pod's name).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The consumer's `client.id` for `instance_id`: what other replicas see in the group.
pub(crate) fn client_id(instance_id: &str) -> String {
    format!("orderstream-decider-{instance_id}")
}

/// Waits until no member of `group` has `client_id`, for at most [`NAMESAKE_PATIENCE`].
pub(crate) async fn ensure_unique(kafka: &KafkaArgs, group: &str, client_id: &str) -> Result<(), DeciderError> {
    let consumer: BaseConsumer = kafka.client_config().create()?;
    let consumer = std::sync::Arc::new(consumer);
    let deadline = tokio::time::Instant::now() + NAMESAKE_PATIENCE;
    let mut warned = false;
    loop {
        let (asking, name, id) = (consumer.clone(), group.to_owned(), client_id.to_owned());
        let taken = blocking(move || {
            let groups = asking.fetch_group_list(Some(&name), METADATA_TIMEOUT)?;
            let taken = groups
                .groups()
                .iter()
                .filter(|found| found.name() == name)
                .flat_map(|found| found.members())
                .any(|member| member.client_id() == id);
            Ok(taken)
        })
        .await?;
        if !taken {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DuplicateInstance {
                group: group.to_owned(),
                client_id: client_id.to_owned(),
            }
            .into());
        }
        if !warned {
            warn!(
                client_id,
                "a group member has this decider's id; waiting for it to time out if it is dead"
            );
            warned = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_on_other_hosts_or_ports_get_other_ids_and_a_restart_keeps_its_own() {
        assert_ne!(instance_id("pod-a", 8084), instance_id("pod-b", 8084));
        assert_ne!(instance_id("host", 8084), instance_id("host", 8094));
        assert_eq!(instance_id("pod-a", 8084), instance_id("pod-a", 8084));
        assert!(!host_name().is_empty());
    }
}
