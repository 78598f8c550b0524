//! How commands and events are named and encoded on the log.
//!
//! A message's type name carries its version (`orderstream.order.placed.v2`). Decoding goes
//! through [`Message::decode`], the one place where older versions are upcast to the current
//! shape, so nothing downstream ever sees an old version.

use thiserror::Error;
use uuid::Uuid;

/// Why bytes from the log could not become a message.
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    #[error("malformed `{message_type}` data: {source}")]
    Malformed {
        message_type: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A command or event as it travels on Kafka: a versioned type name plus JSON data.
pub trait Message: Sized {
    /// The versioned type name, e.g. `orderstream.order.placed.v2`.
    fn message_type(&self) -> &'static str;
    /// The aggregate this message belongs to: the Kafka key and the CloudEvents subject.
    fn aggregate_id(&self) -> Uuid;
    /// The JSON data of the message.
    fn encode(&self) -> Vec<u8>;
    /// Decodes any version ever written, upcasting to the current shape.
    fn decode(message_type: &str, data: &[u8]) -> Result<Self, DecodeError>;
}

/// Parses JSON `data` of `message_type`, naming the type in the error.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(message_type: &str, data: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(data).map_err(|source| DecodeError::Malformed {
        message_type: message_type.to_owned(),
        source,
    })
}

/// Serialises data that is built only from strings, numbers and ids, so it cannot fail.
pub(crate) fn to_json<T: serde::Serialize>(data: &T) -> Vec<u8> {
    serde_json::to_vec(data).expect("message data serialises to JSON")
}
