//! JSON Schema support for types whose wire form is not their Rust shape: validated newtypes
//! travel as bounded strings or integers, decimals as strings.

/// Implements `schemars::JsonSchema` (with the `schema` feature) for `$type`, named after it,
/// as the fixed JSON `$schema`, in which `Self` is `$type`.
macro_rules! fixed_schema {
    ($type:ident, $schema:tt) => {
        #[cfg(feature = "schema")]
        impl schemars::JsonSchema for $type {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($type).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!($schema)
            }
        }
    };
}

pub(crate) use fixed_schema;
