//! Request fields read by name: loosely typed JSON in, typed values or an error naming the field
//! out, never quoting what was sent (a card number sent as a number must not come back); and the
//! user a command acts for.

use domain::money::Decimal;
use domain::{FieldProblem, InvalidField};
use serde_json::value::RawValue;
use serde_json::Value;
use service_kit::auth::Claims;
use uuid::Uuid;

use super::ApiError;

/// A required string field.
pub(super) fn text(field: &'static str, value: Option<Value>) -> Result<String, InvalidField> {
    match value {
        None | Some(Value::Null) => Err(InvalidField::new(field, FieldProblem::Required)),
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(InvalidField::new(
            field,
            FieldProblem::WrongType { expected: "a string" },
        )),
    }
}

/// An optional UUID field.
pub(super) fn optional_uuid(field: &'static str, value: Option<Value>) -> Result<Option<Uuid>, InvalidField> {
    match value {
        None | Some(Value::Null) => Ok(None),
        value => uuid(field, value).map(Some),
    }
}

pub(super) fn uuid(field: &'static str, value: Option<Value>) -> Result<Uuid, InvalidField> {
    text(field, value)?
        .parse()
        .map_err(|_| InvalidField::new(field, FieldProblem::WrongType { expected: "a UUID" }))
}

/// A required JSON integer.
pub(super) fn integer(field: &'static str, value: Option<Value>) -> Result<i64, InvalidField> {
    match value {
        None | Some(Value::Null) => Err(InvalidField::new(field, FieldProblem::Required)),
        Some(Value::Number(n)) => n.as_i64().ok_or(InvalidField::new(
            field,
            FieldProblem::WrongType { expected: "an integer" },
        )),
        Some(_) => Err(InvalidField::new(
            field,
            FieldProblem::WrongType { expected: "an integer" },
        )),
    }
}

/// A required JSON number, kept as the client wrote it so no float ever touches money.
pub(super) fn decimal(field: &'static str, value: Option<Box<RawValue>>) -> Result<Decimal, InvalidField> {
    let raw = value.ok_or(InvalidField::new(field, FieldProblem::Required))?;
    let text = raw.get().trim();
    if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Err(InvalidField::new(
            field,
            FieldProblem::WrongType {
                expected: "a JSON number",
            },
        ));
    }
    Decimal::parse(field, text)
}

/// The user a command acts for, from its `user_id` field: the caller when absent; another user
/// only with `scope`.
pub(super) fn acting_for(claims: &Claims, user_id: Option<Value>, scope: &'static str) -> Result<Uuid, ApiError> {
    let user_id = optional_uuid("user_id", user_id)?.unwrap_or_else(|| claims.user_id());
    if claims.may_act_for(user_id, scope) {
        Ok(user_id)
    } else {
        Err(ApiError::ForeignUser {
            field: "user_id",
            scope,
        })
    }
}
