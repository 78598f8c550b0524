//! A webhook registration read from its JSON fields, every problem naming its field. Only the
//! shape and the rules are checked here; where the URL points is the SSRF guard's call.

use domain::validation::{at_most, plain_text, Lines};
use reqwest::Url;
use serde_json::{Map, Value};

use super::ApiError;
use crate::notification::EVENT_TYPES;
use crate::store::webhooks::NewWebhook;

/// Longest URL accepted, in characters.
pub(super) const MAX_URL_LEN: usize = 2048;
/// Longest description accepted, in characters.
pub(super) const MAX_DESCRIPTION_LEN: usize = 500;
const FIELDS: [&str; 3] = ["url", "events", "description"];

/// The registration in `fields`, or the first problem found.
pub(super) fn parse(mut fields: Map<String, Value>) -> Result<(NewWebhook, Url), ApiError> {
    if let Some(unknown) = fields.keys().find(|key| !FIELDS.contains(&key.as_str())) {
        return Err(ApiError::field(
            unknown.clone(),
            format!("is not a field of a webhook (expected one of {})", FIELDS.join(", ")),
        ));
    }
    let (url, parsed) = url(fields.remove("url"))?;
    let events = events(fields.remove("events"))?;
    let description = description(fields.remove("description"))?;
    Ok((
        NewWebhook {
            url,
            events,
            description,
        },
        parsed,
    ))
}

fn url(value: Option<Value>) -> Result<(String, Url), ApiError> {
    let url = match value {
        None | Some(Value::Null) => return Err(ApiError::field("url", "is required")),
        Some(Value::String(url)) => url,
        Some(_) => return Err(ApiError::field("url", "must be a string")),
    };
    plain_text("url", &url, Lines::Single)?;
    at_most("url", &url, MAX_URL_LEN)?;
    let parsed =
        Url::parse(&url).map_err(|error| ApiError::field("url", format!("is not an absolute URL ({error})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ApiError::field("url", "must be an http or https URL"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::field("url", "must name a host"));
    }
    // Port 0 names no port: every delivery would fail to connect, retried until it gives up.
    if parsed.port() == Some(0) {
        return Err(ApiError::field("url", "must not name port 0"));
    }
    Ok((url, parsed))
}

fn events(value: Option<Value>) -> Result<Vec<String>, ApiError> {
    let names = match value {
        None | Some(Value::Null) => return Err(ApiError::field("events", "is required")),
        Some(Value::Array(names)) => names,
        Some(_) => return Err(ApiError::field("events", "must be an array of event names")),
    };
    if names.is_empty() {
        return Err(ApiError::field("events", "must name at least one event"));
    }
    let mut events: Vec<String> = Vec::with_capacity(names.len());
    for (index, name) in names.into_iter().enumerate() {
        let field = format!("events[{index}]");
        let Value::String(name) = name else {
            return Err(ApiError::field(field, "must be a string"));
        };
        if name.chars().any(char::is_control) {
            return Err(ApiError::field(field, "must not contain control characters"));
        }
        if !EVENT_TYPES.contains(&name.as_str()) {
            return Err(ApiError::field(
                field,
                format!("must be one of: {}", EVENT_TYPES.join(", ")),
            ));
        }
        // A name given twice is one subscription.
        if !events.contains(&name) {
            events.push(name);
        }
    }
    Ok(events)
}

fn description(value: Option<Value>) -> Result<Option<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(description)) => {
            plain_text("description", &description, Lines::Single)?;
            at_most("description", &description, MAX_DESCRIPTION_LEN)?;
            Ok(Some(description))
        }
        Some(_) => Err(ApiError::field("description", "must be a string")),
    }
}

impl From<domain::InvalidField> for ApiError {
    fn from(invalid: domain::InvalidField) -> Self {
        Self::field(invalid.field, invalid.problem.to_string())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused_field(body: Value) -> String {
        let Value::Object(fields) = body else {
            panic!("an object")
        };
        match parse(fields) {
            Err(ApiError::InvalidField { field, .. }) => field,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_valid_registration_is_read() {
        let Value::Object(fields) = json!({
            "url": "https://example.com/hooks?x=1",
            "events": ["order.paid", "order.placed", "order.paid"],
            "description": "Shop ✓",
        }) else {
            unreachable!()
        };
        let (webhook, url) = parse(fields).expect("valid");
        assert_eq!(webhook.events, ["order.paid", "order.placed"]);
        assert_eq!(webhook.description.as_deref(), Some("Shop ✓"));
        assert_eq!(url.host_str(), Some("example.com"));
    }

    #[test]
    fn each_problem_names_its_field() {
        let long_url = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        let cases = [
            (json!({"events": ["order.paid"]}), "url"),
            (json!({"url": 5, "events": ["order.paid"]}), "url"),
            (json!({"url": "/relative", "events": ["order.paid"]}), "url"),
            (json!({"url": "ftp://example.com/", "events": ["order.paid"]}), "url"),
            (
                json!({"url": "https://example.com:0/", "events": ["order.paid"]}),
                "url",
            ),
            (
                json!({"url": "https://exa\u{0}mple.com/", "events": ["order.paid"]}),
                "url",
            ),
            (json!({"url": long_url, "events": ["order.paid"]}), "url"),
            (json!({"url": "https://example.com/"}), "events"),
            (json!({"url": "https://example.com/", "events": []}), "events"),
            (json!({"url": "https://example.com/", "events": "order.paid"}), "events"),
            (
                json!({"url": "https://example.com/", "events": ["order.paid", "order.teleported"]}),
                "events[1]",
            ),
            (
                json!({"url": "https://example.com/", "events": ["order.paid\u{0}"]}),
                "events[0]",
            ),
            (json!({"url": "https://example.com/", "events": [1]}), "events[0]"),
            (
                json!({"url": "https://example.com/", "events": ["order.paid"], "description": "a\u{0}b"}),
                "description",
            ),
            (
                json!({"url": "https://example.com/", "events": ["order.paid"], "description": "a\nb"}),
                "description",
            ),
            (
                json!({"url": "https://example.com/", "events": ["order.paid"], "description": "x".repeat(501)}),
                "description",
            ),
            (
                json!({"url": "https://example.com/", "events": ["order.paid"], "secret": "mine"}),
                "secret",
            ),
        ];
        for (body, field) in cases {
            assert_eq!(refused_field(body.clone()), field, "{body}");
        }
    }
}
