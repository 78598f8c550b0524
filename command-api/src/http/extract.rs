//! The command API's JSON body and path extractors, whose every failure is a problem+json naming
//! what was wrong. The body is read by `service_kit::extract::json_body`; what is this API's own
//! is how it is parsed (a wrong type names its field) and a bad path being a 422.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use serde::de::DeserializeOwned;
use service_kit::extract::{json_body, BodyRejection};

use super::ApiError;

/// The edge takes small bodies only; an order is well under this.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// Like `axum::Json`, but a wrong type or an unknown field names the field
/// (`serde_path_to_error`; every request body declares `deny_unknown_fields`, so a misspelt
/// optional field is refused rather than dropped unread) and every rejection is an [`ApiError`].
#[derive(Debug)]
pub(crate) struct Json<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_body(request, state, BODY_LIMIT).await?;
        parse(&bytes).map(Json)
    }
}

/// Like `axum::extract::Path`, but a segment that does not decode (percent-encoded bytes that
/// are not UTF-8) is a 422 naming the path, as a malformed id is, not axum's plain-text 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct Path<T>(pub(crate) T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::FieldType {
            field: "path".to_owned(),
            detail: rejection.body_text(),
        }
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde would also read a struct from an array; a body must be an object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(BodyRejection::Malformed("the body must be a JSON object".to_owned()).into());
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let parsed = serde_path_to_error::deserialize(&mut *deserializer).map_err(|err| {
        let field = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_data() && field != "." {
            // The field is named: where in the text it stood, the suffix serde_json adds, says
            // nothing more.
            let message = inner.to_string();
            let position = format!(" at line {} column {}", inner.line(), inner.column());
            ApiError::FieldType {
                field,
                detail: message.strip_suffix(&position).unwrap_or(&message).to_owned(),
            }
        } else {
            ApiError::from(BodyRejection::Malformed(inner.to_string()))
        }
    })?;
    // One object per body: a second one, or anything after the first, would be dropped unread.
    deserializer
        .end()
        .map_err(|err| BodyRejection::Malformed(format!("more than one JSON value: {err}")))?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: Option<String>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        name: Option<String>,
        items: Option<Vec<Strict>>,
    }

    #[test]
    fn an_unknown_field_is_named_not_dropped() {
        for (body, named) in [
            (&br#"{"name": "a", "nmae": "b"}"#[..], "nmae"),
            (br#"{"items": [{"name": "a"}, {"nme": 1}]}"#, "items[1].nme"),
        ] {
            match parse::<Strict>(body) {
                Err(ApiError::FieldType { field, detail }) => {
                    assert_eq!(field, named);
                    assert!(
                        detail.starts_with("unknown field") && !detail.contains("line"),
                        "{detail}"
                    );
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn whitespace_may_follow_the_object() {
        assert!(parse::<Body>(b" {\"name\": \"a\"}\r\n").is_ok());
    }

    #[test]
    fn wrong_type_names_the_field() {
        match parse::<Body>(br#"{"name": 5}"#) {
            Err(ApiError::FieldType { field, .. }) => assert_eq!(field, "name"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn broken_json_and_non_objects_are_malformed() {
        for malformed in [&b"{\"name\":"[..], b"[1]", b"{} {}", b"{\"name\":\"a\"}x"] {
            assert!(
                matches!(
                    parse::<Body>(malformed),
                    Err(ApiError::Body(BodyRejection::Malformed(_)))
                ),
                "{malformed:?}"
            );
        }
    }
}
