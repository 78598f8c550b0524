//! Fieldless enums with one spelling each, the same on the wire, in SQL and in problem details.

/// Declares a fieldless enum from `Variant = "spelling"` pairs, with its serde form, `ALL` (every
/// variant in declaration order), `as_str`, `from_wire` and `Display`, all from that one spelling.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $wire:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$variant_meta])* #[serde(rename = $wire)] $variant,)+
        }

        impl $name {
            pub const ALL: [Self; [$($wire),+].len()] = [$(Self::$variant),+];

            /// The one spelling of the variant, e.g. in a column or a query parameter.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }

            /// The variant spelled `raw`, if any.
            pub fn from_wire(raw: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|variant| variant.as_str() == raw)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use wire_enum;
