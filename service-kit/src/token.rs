//! The consistency token: the events-topic positions a write produced, handed to the client so a
//! later read can wait until the projections have passed them (read-your-writes across the
//! asynchronous boundary). Opaque to clients: base64url of `v1:partition=offset,...`.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("consistency token is malformed")]
pub struct MalformedToken;

/// For each events partition, the offset a projection must have reached (its next offset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsistencyToken {
    positions: BTreeMap<i32, i64>,
}

impl ConsistencyToken {
    /// A token requiring `next_offset` on `partition`.
    pub fn at(partition: i32, next_offset: i64) -> Self {
        Self {
            positions: BTreeMap::from([(partition, next_offset)]),
        }
    }

    /// Requires, per partition, the furthest of both tokens.
    pub fn merge(mut self, other: &Self) -> Self {
        for (&partition, &offset) in &other.positions {
            let entry = self.positions.entry(partition).or_insert(offset);
            *entry = (*entry).max(offset);
        }
        self
    }

    pub fn positions(&self) -> &BTreeMap<i32, i64> {
        &self.positions
    }

    pub fn encode(&self) -> String {
        let body: Vec<String> = self.positions.iter().map(|(p, o)| format!("{p}={o}")).collect();
        URL_SAFE_NO_PAD.encode(format!("v1:{}", body.join(",")))
    }

    pub fn decode(token: &str) -> Result<Self, MalformedToken> {
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| MalformedToken)?;
        let text = String::from_utf8(bytes).map_err(|_| MalformedToken)?;
        let body = text.strip_prefix("v1:").ok_or(MalformedToken)?;
        let mut positions = BTreeMap::new();
        for pair in body.split(',').filter(|p| !p.is_empty()) {
            let (partition, offset) = pair.split_once('=').ok_or(MalformedToken)?;
            let partition: i32 = partition.parse().map_err(|_| MalformedToken)?;
            let offset: i64 = offset.parse().map_err(|_| MalformedToken)?;
            if partition < 0 || offset < 0 {
                return Err(MalformedToken);
            }
            positions.insert(partition, offset);
        }
        Ok(Self { positions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_merges_to_the_furthest_position() {
        let token = ConsistencyToken::at(3, 17)
            .merge(&ConsistencyToken::at(0, 2))
            .merge(&ConsistencyToken::at(3, 9));
        assert_eq!(token.positions(), &BTreeMap::from([(0, 2), (3, 17)]));
        assert_eq!(ConsistencyToken::decode(&token.encode()), Ok(token));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "!!!",
            &URL_SAFE_NO_PAD.encode("v2:1=2"),
            &URL_SAFE_NO_PAD.encode("v1:1=-2"),
            &URL_SAFE_NO_PAD.encode("v1:x=2"),
        ] {
            assert_eq!(ConsistencyToken::decode(bad), Err(MalformedToken), "{bad}");
        }
    }
}
