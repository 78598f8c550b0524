//! Validated text newtypes: each value passed its rule, travels as a plain JSON string, and is
//! checked again when decoded from the log.

/// Declares `$name`, a string newtype built only through `parse`, which applies `$rule` (a
/// `fn(field, value, max) -> Result<String, InvalidField>`) to the client's field `$field`.
macro_rules! validated_text {
    ($(#[$meta:meta])* $name:ident { field: $field:literal, min: $min:expr, max: $max:expr, rule: $rule:path }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(value: &str) -> Result<Self, $crate::InvalidField> {
                $rule($field, value, Self::MAX_CHARS).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::InvalidField;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        #[cfg(feature = "schema")]
        $crate::schema::text_schema!($name, stringify!($name), $min, $max);
    };
}

pub(crate) use validated_text;

/// A rule for free text kept as written: at most `max` characters.
pub(crate) fn at_most_text(field: &'static str, value: &str, max: usize) -> Result<String, crate::InvalidField> {
    crate::validation::at_most(field, value, max).map(str::to_owned)
}
