//! Field rules with typed errors naming the field, shared by the HTTP edge and the decoders.

use thiserror::Error;

/// A request field that breaks a rule; `field` is the name the client sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{field}` {problem}")]
pub struct InvalidField {
    pub field: &'static str,
    pub problem: FieldProblem,
}

impl InvalidField {
    pub fn new(field: &'static str, problem: FieldProblem) -> Self {
        Self { field, problem }
    }
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FieldProblem {
    #[error("is required")]
    Required,
    #[error("must not be blank")]
    Blank,
    #[error("must be at most {max} characters (got {actual})")]
    TooLong { max: usize, actual: usize },
}

/// Trims `value` and checks it holds 1..=`max` characters.
pub fn bounded_text(field: &'static str, value: &str, max: usize) -> Result<String, InvalidField> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(InvalidField::new(field, FieldProblem::Blank));
    }
    at_most(field, trimmed, max).map(str::to_owned)
}

/// Checks `value` holds at most `max` characters (Unicode scalar values, not bytes).
pub fn at_most<'a>(field: &'static str, value: &'a str, max: usize) -> Result<&'a str, InvalidField> {
    let actual = value.chars().count();
    if actual > max {
        return Err(InvalidField::new(field, FieldProblem::TooLong { max, actual }));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_text_trims_and_counts_characters_not_bytes() {
        assert_eq!(bounded_text("name", "  Zoë  ", 3), Ok("Zoë".to_owned()));
        assert_eq!(
            bounded_text("name", "Zoë!", 3),
            Err(InvalidField::new("name", FieldProblem::TooLong { max: 3, actual: 4 }))
        );
    }

    #[test]
    fn bounded_text_rejects_whitespace_only() {
        assert_eq!(
            bounded_text("name", " \t\n", 10),
            Err(InvalidField::new("name", FieldProblem::Blank))
        );
    }

    #[test]
    fn error_names_the_field() {
        let err = InvalidField::new("note", FieldProblem::TooLong { max: 2, actual: 5 });
        assert_eq!(err.to_string(), "`note` must be at most 2 characters (got 5)");
    }
}
