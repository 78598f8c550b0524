//! How commands and events are named and encoded on the log.
//!
//! A message's type name carries its version (`orderstream.order.placed.v2`). Decoding goes
//! through [`Message::decode`], the one place where older versions are upcast to the current
//! shape, so nothing downstream ever sees an old version. Each aggregate declares its commands and
//! its events in one `messages!` table, from which their enum, [`Message`] impl and schemas come.

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

/// One message version as the `schemas` crate checks it in.
#[cfg(feature = "schema")]
#[derive(Debug)]
pub struct VersionSchema {
    /// The versioned type name, e.g. `orderstream.order.placed.v3`.
    pub message_type: &'static str,
    /// Only decoded and upcast, never written: its schema is history and is never rewritten.
    pub superseded: bool,
    pub schema: schemars::Schema,
}

/// Declares the data structs of messages, every one the same way: serde and, with the `schema`
/// feature, its JSON Schema derived; and each `Option` field left out of the JSON when absent and
/// read as absent when missing. That is what lets a field be added to a message as optional
/// without a new type name: older messages without it still decode. Fields are written as in a
/// struct, without `pub`: every field of a message is public.
macro_rules! payloads {
    ($($(#[$meta:meta])* pub struct $name:ident { $($fields:tt)* })+) => {
        $($crate::message::payloads!(@field [$(#[$meta])*] $name [] $($fields)*);)+
    };
    (@field $meta:tt $name:ident [$($done:tt)*] $(#[$field_meta:meta])* $field:ident: Option<$ty:ty> $(, $($rest:tt)*)?) => {
        $crate::message::payloads!(@field $meta $name [
            $($done)*
            $(#[$field_meta])*
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub $field: Option<$ty>,
        ] $($($rest)*)?);
    };
    (@field $meta:tt $name:ident [$($done:tt)*] $(#[$field_meta:meta])* $field:ident: $ty:ty $(, $($rest:tt)*)?) => {
        $crate::message::payloads!(@field $meta $name [$($done)* $(#[$field_meta])* pub $field: $ty,] $($($rest)*)?);
    };
    (@field [$($meta:tt)*] $name:ident [$($done:tt)*]) => {
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        $($meta)*
        pub struct $name {
            $($done)*
        }
    };
}

pub(crate) use payloads;

/// Declares an aggregate's commands or events from one table: for every message written today its
/// type-name constant and its data struct (declared as [`payloads!`] does, and naming the enum's
/// variant), and for every superseded version its constant, its frozen struct and the upcast to
/// the current shape. From the table come the enum, its id accessor, its [`Message`] impl
/// (superseded versions are upcast in `decode` and nowhere else) and, with the `schema` feature,
/// the JSON Schema of every version, so adding a version is one entry here plus its checked-in
/// schema and fixtures. A constant's doc names its struct; a comment before the constant adds to
/// that, one before the struct is the schema's description. A struct whose fields need no comment
/// is written on one line, so the table reads a message a line where it can.
macro_rules! messages {
    (
        $(#[$enum_meta:meta])*
        pub enum $enum:ident by $id:ident {
            $(
                $(#[$doc:meta])* $name:ident = $type_name:literal =>
                $(#[$meta:meta])* pub struct $variant:ident { $($fields:tt)* }
            )+
        }
        superseded {
            $($(#[$old_doc:meta])* $old_name:ident = $old_type_name:literal => $old_variant:ident($frozen:ty, $upcast:path),)*
        }
    ) => {
        $(
            #[doc = concat!("Type name of [`", stringify!($variant), "`] on the log.")]
            $(#[$doc])*
            pub const $name: &str = $type_name;
        )+
        $($(#[$old_doc])* pub const $old_name: &str = $old_type_name;)*

        $crate::message::payloads! {
            $($(#[$meta])* pub struct $variant { $($fields)* })+
        }

        $(#[$enum_meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $enum {
            $($variant($variant),)+
        }

        impl $enum {
            /// The id of the aggregate the message belongs to.
            pub fn $id(&self) -> uuid::Uuid {
                match self {
                    $(Self::$variant(message) => message.$id,)+
                }
            }

            /// The schema of every version, current and superseded.
            #[cfg(feature = "schema")]
            pub fn schemas() -> Vec<$crate::message::VersionSchema> {
                vec![
                    $($crate::message::VersionSchema {
                        message_type: $name,
                        superseded: false,
                        schema: schemars::schema_for!($variant),
                    },)+
                    $($crate::message::VersionSchema {
                        message_type: $old_name,
                        superseded: true,
                        schema: schemars::schema_for!($frozen),
                    },)*
                ]
            }
        }

        impl $crate::message::Message for $enum {
            fn message_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $name,)+
                }
            }

            fn aggregate_id(&self) -> uuid::Uuid {
                self.$id()
            }

            fn encode(&self) -> Vec<u8> {
                match self {
                    $(Self::$variant(message) => $crate::message::to_json(message),)+
                }
            }

            fn decode(message_type: &str, data: &[u8]) -> Result<Self, $crate::message::DecodeError> {
                match message_type {
                    $($name => $crate::message::parse(message_type, data).map(Self::$variant),)+
                    $($old_name => $crate::message::parse::<$frozen>(message_type, data)
                        .map(|old| Self::$old_variant($upcast(old))),)*
                    other => Err($crate::message::DecodeError::UnknownType(other.to_owned())),
                }
            }
        }
    };
}

pub(crate) use messages;
