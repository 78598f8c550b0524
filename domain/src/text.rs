//! The one rule for free text, and the validated text newtypes built on it: each value passed
//! its rule, travels as a plain JSON string, and is checked again when decoded from the log, so
//! neither the edge nor the decider can accept text a read model could not store.

use unicode_normalization::is_nfc;

use crate::validation::{FieldProblem, InvalidField};

/// Whether a free-text field may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// One line (a name, a reason): no control character at all.
    Single,
    /// Several lines (a note, an address): tab and newline (`\n`, not `\r`) are allowed.
    Multi,
}

impl Lines {
    /// The control characters the field still allows, as the client is told.
    pub(crate) fn exceptions(self) -> &'static str {
        match self {
            Self::Single => "",
            Self::Multi => " other than tab and newline",
        }
    }

    fn allows(self, c: char) -> bool {
        let control = matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}');
        !control || (self == Self::Multi && matches!(c, '\t' | '\n'))
    }
}

/// The rule every free-text field follows on top of its own (trimming, length): no C0 or C1
/// control character save those `lines` allows, and Unicode normalization form C.
///
/// Valid UTF-8 is given: a `&str` is, and JSON that is not fails as a whole before any field is
/// read. A NUL would break PostgreSQL (`text` cannot hold it, `jsonb` refuses `\u0000`); other
/// controls are invisible to whoever reads the value. Text that is not NFC is refused rather than
/// normalized, so what is stored reads back exactly as the client sent it.
pub fn plain_text<'a>(field: &'static str, value: &'a str, lines: Lines) -> Result<&'a str, InvalidField> {
    if let Some(c) = value.chars().find(|c| !lines.allows(*c)) {
        return Err(InvalidField::new(
            field,
            FieldProblem::ControlCharacter {
                code_point: u32::from(c),
                lines,
            },
        ));
    }
    if !is_nfc(value) {
        return Err(InvalidField::new(field, FieldProblem::NotNfc));
    }
    Ok(value)
}

/// Declares each `$name`, a string newtype built only through `parse`, which applies `$rule` (a
/// `fn(field, value, max) -> Result<String, InvalidField>`) to the client's field `$field`.
macro_rules! validated_text {
    ($($(#[$meta:meta])* $name:ident { field: $field:literal, min: $min:expr, max: $max:expr, rule: $rule:path })+) => {$(
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

        $crate::schema::fixed_schema!($name, { "type": "string", "minLength": $min, "maxLength": $max });
    )+};
}

pub(crate) use validated_text;

/// A rule for free text kept as written, untrimmed and possibly over several lines: at most `max`
/// characters of [plain text](plain_text).
pub(crate) fn at_most_text(field: &'static str, value: &str, max: usize) -> Result<String, InvalidField> {
    plain_text(field, value, Lines::Multi)?;
    crate::validation::at_most(field, value, max).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use unicode_normalization::UnicodeNormalization;

    use super::*;
    use crate::validation::{bounded_lines, bounded_text};

    fn control(code_point: u32, lines: Lines) -> FieldProblem {
        FieldProblem::ControlCharacter { code_point, lines }
    }

    /// Every C0 and C1 control character.
    fn controls() -> impl Iterator<Item = char> {
        ('\u{0}'..='\u{1f}').chain('\u{7f}'..='\u{9f}')
    }

    #[test]
    fn a_nul_is_refused_in_every_kind_of_field() {
        for lines in [Lines::Single, Lines::Multi] {
            assert_eq!(
                plain_text("note", "a\u{0}b", lines).unwrap_err(),
                InvalidField::new("note", control(0, lines))
            );
        }
    }

    #[test]
    fn every_control_character_is_refused_on_one_line() {
        for c in controls() {
            let text = format!("x{c}y");
            assert_eq!(
                plain_text("name", &text, Lines::Single).unwrap_err().problem,
                control(u32::from(c), Lines::Single),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn multi_line_text_allows_tab_and_newline_only() {
        assert_eq!(
            plain_text("note", "line 1\n\tline 2", Lines::Multi),
            Ok("line 1\n\tline 2")
        );
        for c in controls().filter(|c| !matches!(c, '\t' | '\n')) {
            let text = format!("line 1{c}line 2");
            assert_eq!(
                plain_text("note", &text, Lines::Multi).unwrap_err().problem,
                control(u32::from(c), Lines::Multi)
            );
        }
    }

    #[test]
    fn text_that_only_looks_like_a_control_is_plain() {
        for text in [
            "\\u0000",
            "\\0",
            "^@",
            "'\"\\",
            "\u{a0}non-breaking",
            "\u{2028}",
            "𝄞 🎉",
        ] {
            assert_eq!(plain_text("name", text, Lines::Single), Ok(text));
        }
    }

    #[test]
    fn decomposed_text_is_refused_not_rewritten() {
        assert_eq!(
            plain_text("name", "Zoe\u{308}", Lines::Single).unwrap_err(),
            InvalidField::new("name", FieldProblem::NotNfc)
        );
        assert_eq!(plain_text("name", "Zoë", Lines::Single), Ok("Zoë"));
        // A combining mark with nothing to combine with is already NFC.
        assert_eq!(plain_text("name", "\u{301}x", Lines::Single), Ok("\u{301}x"));
        // Singletons such as the Ångström sign are not NFC: NFC maps them to another character.
        assert_eq!(
            plain_text("name", "\u{212b}", Lines::Single).unwrap_err().problem,
            FieldProblem::NotNfc
        );
    }

    #[test]
    fn trimming_comes_before_the_rule() {
        assert_eq!(bounded_text("name", "\n\t John \r\n", 10), Ok("John".to_owned()));
        assert_eq!(
            bounded_text("name", " John\nDoe ", 10).unwrap_err().problem,
            control(0x0a, Lines::Single)
        );
        assert_eq!(
            bounded_lines("billing_address", " 1 Elm St\nSpringfield\n", 100),
            Ok("1 Elm St\nSpringfield".to_owned())
        );
        assert_eq!(
            bounded_lines("billing_address", "1 Elm St\r\nSpringfield", 100)
                .unwrap_err()
                .problem,
            control(0x0d, Lines::Multi)
        );
    }

    #[test]
    fn every_one_line_text_field_is_trimmed_and_bounded() {
        use crate::order::{CancelReason, Carrier, OrderName, PaymentFailureReason, TrackingNumber};
        use crate::pricing::ItemName;
        use crate::purchase::{RefundReason, Username};

        type Parse = fn(&str) -> Result<String, InvalidField>;
        // Each type with the field it names and its maximum, parsing to the text it keeps.
        macro_rules! one_line {
            ($($type:ident($field:literal, $max:literal)),+ $(,)?) => {
                [$(($field, $max, (|text| $type::parse(text).map(|kept| kept.as_str().to_owned())) as Parse)),+]
            };
        }
        let fields = one_line![
            OrderName("name", 200),
            Carrier("carrier", 100),
            TrackingNumber("tracking_number", 100),
            CancelReason("reason", 500),
            PaymentFailureReason("reason", 500),
            ItemName("name", 200),
            Username("username", 100),
            RefundReason("reason", 500),
        ];
        for (field, max, parse) in fields {
            assert_eq!(parse("  John Doe "), Ok("John Doe".to_owned()), "{field}");
            for blank in ["", " ", "   "] {
                assert_eq!(
                    parse(blank),
                    Err(InvalidField::new(field, FieldProblem::Blank)),
                    "{field}"
                );
            }
            for letter in ["x", "é"] {
                assert_eq!(parse(&letter.repeat(max)), Ok(letter.repeat(max)), "{field}");
                assert_eq!(
                    parse(&letter.repeat(max + 1)),
                    Err(InvalidField::new(field, FieldProblem::TooLong { max, actual: max + 1 })),
                    "{field}"
                );
            }
        }
    }

    #[test]
    fn problems_name_the_code_point_and_the_form() {
        assert_eq!(
            InvalidField::new("name", control(0, Lines::Single)).to_string(),
            "`name` must not contain control characters (found U+0000)"
        );
        assert_eq!(
            InvalidField::new("note", control(0x9f, Lines::Multi)).to_string(),
            "`note` must not contain control characters other than tab and newline (found U+009F)"
        );
        assert_eq!(
            InvalidField::new("name", FieldProblem::NotNfc).to_string(),
            "`name` must be in Unicode normalization form C (NFC): composed characters, such as é \
             rather than e followed by U+0301"
        );
    }

    #[test]
    fn text_breaking_the_rule_does_not_decode_from_the_log_either() {
        use crate::order::{ORDER_PLACED_V2, PLACE_ORDER_V1};
        use crate::{Command, DecodeError, Event, Message};

        let placed = |name: &str, note: &str| {
            serde_json::json!({
                "order_id": "8daafe3b-0000-4000-8000-000000000001",
                "name": name,
                "note": note,
                "placed_at": "2026-11-21T15:04:05Z",
                "channel": "api",
            })
            .to_string()
        };
        let fine = placed("Zoë", "line 1\nline 2");
        assert!(Event::decode(ORDER_PLACED_V2, fine.as_bytes()).is_ok());
        assert!(Command::decode(PLACE_ORDER_V1, fine.as_bytes()).is_ok());
        for data in [
            placed("Zoë", "\u{0}"),
            placed("Zoe\u{308}", ""),
            placed("Zo\u{7f}ë", ""),
        ] {
            for decoded in [
                Event::decode(ORDER_PLACED_V2, data.as_bytes()).map(drop),
                Command::decode(PLACE_ORDER_V1, data.as_bytes()).map(drop),
            ] {
                assert!(matches!(decoded, Err(DecodeError::Malformed { .. })), "{data}");
            }
        }
    }

    /// Any text, weighted towards what breaks storage or comparison: controls, combining marks,
    /// astral characters, escapes written out, quotes and backslashes.
    fn any_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => any::<char>().prop_map(String::from),
            2 => prop::sample::select(controls().collect::<Vec<_>>()).prop_map(String::from),
            2 => prop::sample::select(vec!['\u{301}', '\u{308}', '\u{327}', '\u{20dd}']).prop_map(String::from),
            1 => prop::sample::select(vec!["\\u0000", "\"", "\\", "'", "e\u{301}", "é", "𝄞", " ", "\u{85}"])
                .prop_map(str::to_owned),
            4 => "[a-zA-Z ]{1,4}",
        ];
        prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn accepted_text_is_exactly_the_input_and_obeys_the_rule(text in any_text(), multi in any::<bool>()) {
            let lines = if multi { Lines::Multi } else { Lines::Single };
            match plain_text("f", &text, lines) {
                Ok(accepted) => {
                    prop_assert_eq!(accepted, text.as_str());
                    prop_assert!(text.chars().all(|c| lines.allows(c)));
                    prop_assert_eq!(text.nfc().collect::<String>(), text.clone());
                }
                Err(err) => {
                    prop_assert_eq!(err.field, "f");
                    match err.problem {
                        FieldProblem::ControlCharacter { code_point, lines: told } => {
                            prop_assert_eq!(told, lines);
                            let found = char::from_u32(code_point).unwrap();
                            prop_assert!(text.contains(found) && !lines.allows(found));
                        }
                        FieldProblem::NotNfc => {
                            prop_assert!(text.chars().all(|c| lines.allows(c)));
                            prop_assert_ne!(text.nfc().collect::<String>(), text.clone());
                        }
                        other => prop_assert!(false, "unexpected {:?}", other),
                    }
                }
            }
        }

        #[test]
        fn normalized_text_without_controls_is_always_accepted(text in any_text()) {
            let cleaned: String = text.chars().filter(|c| Lines::Single.allows(*c)).nfc().collect();
            prop_assert_eq!(plain_text("f", &cleaned, Lines::Single), Ok(cleaned.as_str()));
        }

        #[test]
        fn a_control_anywhere_is_found(
            text in "[a-zé ]{0,20}",
            at in any::<prop::sample::Index>(),
            c in prop::sample::select(controls().collect::<Vec<_>>()),
        ) {
            let mut chars: Vec<char> = text.chars().collect();
            chars.insert(at.index(chars.len() + 1), c);
            let text: String = chars.into_iter().collect();
            let single = plain_text("f", &text, Lines::Single);
            prop_assert_eq!(single, Err(InvalidField::new("f", control(u32::from(c), Lines::Single))));
            prop_assert_eq!(plain_text("f", &text, Lines::Multi).is_ok(), matches!(c, '\t' | '\n'));
        }

        #[test]
        fn bounded_text_keeps_a_value_it_accepted_unchanged_when_checked_again(text in any_text()) {
            if let Ok(stored) = bounded_text("f", &text, 30) {
                prop_assert_eq!(bounded_text("f", &stored, 30), Ok(stored.clone()));
                prop_assert_eq!(stored.as_str(), text.trim());
            }
            if let Ok(stored) = bounded_lines("f", &text, 30) {
                prop_assert_eq!(bounded_lines("f", &stored, 30), Ok(stored.clone()));
            }
        }
    }
}
