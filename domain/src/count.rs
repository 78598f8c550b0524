//! Counts of units: positive integers within a range, one JSON integer each on the wire.

/// Declares each `$name`, a `u32` newtype built only through `new`, which checks the value is within
/// `$min..=$max` and names the field `quantity`. On the wire a JSON integer; decoding re-checks
/// the range.
macro_rules! unit_count {
    ($($(#[$meta:meta])* $name:ident { min: $min:expr, max: $max:expr })+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "i64", into = "u32")]
        pub struct $name(u32);

        impl $name {
            pub const MIN: u32 = $min;
            pub const MAX: u32 = $max;

            /// Checks `value` is within [`MIN`](Self::MIN)`..=`[`MAX`](Self::MAX), naming the
            /// field `quantity`.
            pub fn new(value: i64) -> Result<Self, $crate::InvalidField> {
                u32::try_from(value)
                    .ok()
                    .filter(|value| (Self::MIN..=Self::MAX).contains(value))
                    .map(Self)
                    .ok_or($crate::InvalidField::new(
                        "quantity",
                        $crate::FieldProblem::OutOfRange {
                            min: i64::from(Self::MIN),
                            max: i64::from(Self::MAX),
                        },
                    ))
            }

            pub fn get(self) -> u32 {
                self.0
            }
        }

        impl TryFrom<i64> for $name {
            type Error = $crate::InvalidField;
            fn try_from(value: i64) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for u32 {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        $crate::schema::fixed_schema!($name, { "type": "integer", "minimum": Self::MIN, "maximum": Self::MAX });
    )+};
}

pub(crate) use unit_count;
