//! JSON Schema support for validated newtypes, whose wire form is a bounded string.

/// Implements `schemars::JsonSchema` for a string newtype holding `min..=max` characters.
macro_rules! text_schema {
    ($type:ty, $name:expr, $min:expr, $max:expr) => {
        impl schemars::JsonSchema for $type {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "minLength": $min, "maxLength": $max })
            }
        }
    };
}

pub(crate) use text_schema;
