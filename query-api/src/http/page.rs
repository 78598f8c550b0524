//! What the list and detail answers share: the OpenAPI shape of a query route, ids read from the
//! path, `limit`, the opaque keyset cursor of newest-first pages and the pages themselves, and
//! amounts as clients read them.

use chrono::{DateTime, Utc};
use domain::money::{Currency, Money};
use read_models::Keyset;
use serde::{Deserialize, Serialize};
use service_kit::extract::InvalidParameter;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::ApiError;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

/// The `#[utoipa::path]` of a query route, and its span: `GET`, for the readers named first (users
/// and staff, staff only, or the catalog's readers), the route's own parameters followed by the
/// consistency token (query parameter or header), and the problems every query may answer: 400,
/// 401, 403 and 503, 404 where `not_found` names its response, and 422 where `invalid` does. The handler takes the query as `read: Read`.
macro_rules! query_path {
    (for users and staff; $($rest:tt)*) => {
        $crate::http::page::query_path!(@with [("bearer" = ["read"]), ("bearer" = ["read:all"])] $($rest)*);
    };
    (for catalog readers; $($rest:tt)*) => {
        $crate::http::page::query_path!(@with [
            ("bearer" = ["read"]), ("bearer" = ["read:all"]),
            ("bearer" = ["catalog:read"]), ("bearer" = ["catalog:write"])
        ] $($rest)*);
    };
    (for staff; $($rest:tt)*) => {
        $crate::http::page::query_path!(@with [("bearer" = ["read:all"])] $($rest)*);
    };
    (
        @with [$($security:tt)*]
        path = $path:literal, tag = $tag:literal, $(summary = $summary:literal,)?
        params($($param:tt),* $(,)?),
        ok = ($description:literal, $body:ident) $(, not_found = $not_found:ident)? $(, invalid = $invalid:ident)?;
        $item:item
    ) => {
        #[utoipa::path(
            get,
            path = $path,
            tag = $tag,
            $(summary = $summary,)?
            params(
                $($param,)*
                $crate::http::consistency::TokenQuery,
                ("X-Consistency-Token" = Option<String>, Header,
                    description = "The `consistency_token` of an earlier write, if not given as query parameter"),
            ),
            security($($security)*),
            responses(
                (status = 200, description = $description, body = $body),
                (status = 400, response = $crate::http::openapi::InvalidParameter),
                (status = 401, response = $crate::http::openapi::Unauthorized),
                (status = 403, response = $crate::http::openapi::Forbidden),
                $((status = 404, response = $crate::http::openapi::$not_found),)?
                $((status = 422, response = $crate::http::openapi::$invalid),)?
                (status = 503, response = $crate::http::openapi::Unavailable),
            )
        )]
        #[tracing::instrument(skip(read))]
        $item
    };
}
pub(super) use query_path;

/// Declares the answer of a listing: one page of `$item`s and, unless it is the last, where the
/// next starts.
macro_rules! page_of {
    ($page:ident of $item:ident) => {
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        struct $page {
            items: Vec<$item>,
            /// Pass as `after` for the next page; absent on the last page.
            #[serde(skip_serializing_if = "Option::is_none")]
            next_after: Option<String>,
        }

        impl $page {
            /// The page of `limit` items a query read one more than (the one more tells that
            /// another page follows), with `next_after` taken from its last item.
            fn of(mut items: Vec<$item>, limit: i64, next_after: impl Fn(&$item) -> String) -> Self {
                let more = items.len() as i64 > limit;
                items.truncate(limit as usize);
                let next_after = if more { items.last().map(next_after) } else { None };
                Self { items, next_after }
            }
        }
    };
}
pub(super) use page_of;

/// The paging parameters of a listing without filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PageParams {
    /// Items per page, 1 to 500; 50 when absent.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    pub(super) limit: Option<String>,
    /// The `next_after` of the previous page.
    pub(super) after: Option<String>,
}

/// The longest part of a refused value a detail quotes back.
const QUOTED_CHARS: usize = 64;

/// `raw` as a detail quotes it back: in backticks, cut after [`QUOTED_CHARS`] characters with
/// its length named, so that a refused value of kilobytes does not come back whole.
pub(super) fn quoted(raw: &str) -> String {
    match raw.char_indices().nth(QUOTED_CHARS) {
        None => format!("`{raw}`"),
        Some((end, _)) => format!("`{}…` ({} characters)", &raw[..end], raw.chars().count()),
    }
}

/// `limit`: 1 to 500, default 50.
pub(super) fn parse_limit(raw: Option<&str>) -> Result<i64, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    raw.parse::<i64>()
        .ok()
        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
        .ok_or(ApiError::InvalidParameter(InvalidParameter {
            field: "limit",
            detail: format!("must be an integer from 1 to {MAX_LIMIT}, got {}", quoted(raw)),
        }))
}

/// The row a detail query found, or a 404 naming `resource` and `key`: another user's row is
/// answered exactly like a missing one.
pub(super) fn found<T>(row: Option<T>, resource: &'static str, key: impl ToString) -> Result<T, ApiError> {
    row.ok_or_else(|| ApiError::NotFound {
        resource,
        key: key.to_string(),
    })
}

/// An id from the path or a query parameter; a bad one is a 400 naming `field`.
pub(crate) fn parse_uuid(field: &'static str, raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::InvalidParameter(InvalidParameter {
            field,
            detail: format!("must be a UUID, got {}", quoted(raw)),
        })
    })
}

/// Text from the path or the query string that is bound as a PostgreSQL `text`, which cannot hold
/// a NUL: such a value is a 400 naming `field` rather than a database error (and no stored name
/// has one).
pub(super) fn parse_text<'a>(field: &'static str, raw: &'a str) -> Result<&'a str, ApiError> {
    if raw.contains('\0') {
        return Err(ApiError::InvalidParameter(InvalidParameter {
            field,
            detail: "must not contain a NUL character".to_owned(),
        }));
    }
    Ok(raw)
}

/// Where a newest-first page ended: its last item's `(time, id)`, the listing's sort key, so the
/// next page starts right after it however many rows arrive meanwhile.
///
/// Opaque to clients: hex of the time in microseconds since the epoch (big-endian `i64`, the
/// precision PostgreSQL keeps, so it round-trips exactly) followed by the id's 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cursor {
    pub(super) at: DateTime<Utc>,
    pub(super) id: Uuid,
}

impl From<Cursor> for Keyset {
    fn from(cursor: Cursor) -> Self {
        Self {
            at: cursor.at,
            id: cursor.id,
        }
    }
}

impl Cursor {
    const BYTES: usize = 8 + 16;

    pub(super) fn encode(self) -> String {
        let mut bytes = Vec::with_capacity(Self::BYTES);
        bytes.extend_from_slice(&self.at.timestamp_micros().to_be_bytes());
        bytes.extend_from_slice(self.id.as_bytes());
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    pub(super) fn decode(raw: &str) -> Result<Self, ApiError> {
        let malformed = || {
            ApiError::InvalidParameter(InvalidParameter {
                field: "after",
                detail: format!("must be a `next_after` from an earlier page, got {}", quoted(raw)),
            })
        };
        if raw.len() != Self::BYTES * 2 || !raw.is_ascii() {
            return Err(malformed());
        }
        let bytes = (0..raw.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&raw[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| malformed())?;
        let (micros, id) = bytes.split_at(8);
        let micros = i64::from_be_bytes(micros.try_into().map_err(|_| malformed())?);
        Ok(Self {
            at: DateTime::from_timestamp_micros(micros).ok_or_else(malformed)?,
            id: Uuid::from_slice(id).map_err(|_| malformed())?,
        })
    }
}

/// An amount as clients read it. `currency` is left out where the enclosing object names it.
#[derive(Debug, PartialEq, Eq, Serialize, ToSchema)]
pub(super) struct Amount {
    /// Exactly the currency's decimals: `"100.50"` USD, `"100"` JPY, `"1.005"` KWD.
    #[schema(example = "100.50")]
    value: String,
    /// In the currency's minor unit: `10050` for 100.50 USD.
    minor: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "USD")]
    currency: Option<&'static str>,
}

impl Amount {
    pub(super) fn of(money: Money) -> Self {
        Self {
            value: money.to_decimal_string(),
            minor: money.minor(),
            currency: Some(money.currency().code()),
        }
    }

    pub(super) fn without_currency(self) -> Self {
        Self { currency: None, ..self }
    }
}

/// Money from a row's minor units and currency code. The projector wrote both from checked
/// [`Money`], so a failure means the table and the code disagree (a currency dropped from the
/// table, a negative sum): a decoding error, like a column of the wrong type.
pub(super) fn stored_money(column: &'static str, minor: i64, currency: &str) -> Result<Money, sqlx::Error> {
    Currency::parse("currency", currency)
        .and_then(|currency| Money::from_minor(minor, currency))
        .map_err(|invalid| sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: Box::new(invalid),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(err: ApiError) -> bool {
        matches!(err, ApiError::InvalidParameter(InvalidParameter { field: "after", .. }))
    }

    #[test]
    fn limit_defaults_and_is_bounded() {
        assert_eq!(parse_limit(None).unwrap(), 50);
        assert_eq!(parse_limit(Some("500")).unwrap(), 500);
        for bad in ["0", "501", "-1", "ten"] {
            assert!(matches!(
                parse_limit(Some(bad)),
                Err(ApiError::InvalidParameter(InvalidParameter { field: "limit", .. }))
            ));
        }
    }

    #[test]
    fn a_refused_value_is_quoted_back_cut_to_a_bounded_length() {
        assert_eq!(quoted("ten"), "`ten`");
        let exact = "é".repeat(QUOTED_CHARS);
        assert_eq!(quoted(&exact), format!("`{exact}`"));
        let long = format!("{exact}and 10,000 more: {}", "x".repeat(10_000));
        assert_eq!(
            quoted(&long),
            format!("`{exact}…` ({} characters)", long.chars().count())
        );
    }

    #[test]
    fn text_with_a_nul_is_a_bad_parameter() {
        assert_eq!(parse_text("name", "Jane Doe").unwrap(), "Jane Doe");
        assert!(matches!(
            parse_text("name", "Jane\0Doe"),
            Err(ApiError::InvalidParameter(InvalidParameter { field: "name", .. }))
        ));
    }

    #[test]
    fn a_cursor_round_trips_and_is_opaque() {
        let cursor = Cursor {
            at: "2025-01-19T15:04:05.123456Z".parse().unwrap(),
            id: Uuid::from_u128(0x8daa_fe3b_0000_4000_8000_0000_0000_0001),
        };
        let encoded = cursor.encode();
        assert_eq!(encoded.len(), 48);
        assert!(encoded.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(Cursor::decode(&encoded).unwrap(), cursor);

        let before_epoch = Cursor {
            at: "1969-12-31T23:59:59.999999Z".parse().unwrap(),
            id: Uuid::nil(),
        };
        assert_eq!(Cursor::decode(&before_epoch.encode()).unwrap(), before_epoch);
    }

    #[test]
    fn a_malformed_cursor_is_a_bad_after() {
        let valid = Cursor {
            at: "2025-01-19T15:04:05Z".parse().unwrap(),
            id: Uuid::from_u128(7),
        }
        .encode();
        let non_hex = format!("zz{}", &valid[2..]);
        let multibyte = format!("é{}", &valid[2..]);
        // Beyond the times chrono can hold.
        let far_future = format!("7fffffffffffffff{}", &valid[16..]);
        for bad in [
            "",
            "abc",
            &valid[..46],
            format!("{valid}00").as_str(),
            non_hex.as_str(),
            multibyte.as_str(),
            far_future.as_str(),
            "2025-01-19T15:04:05Z|00000000-0000-0000-0000-000000000007",
        ] {
            assert!(after(Cursor::decode(bad).unwrap_err()), "{bad:?}");
        }
    }

    #[test]
    fn amounts_use_the_currencys_minor_unit() {
        let amount = |minor, code| Amount::of(stored_money("amount_minor", minor, code).unwrap());
        assert_eq!(
            amount(10_050, "USD"),
            Amount {
                value: "100.50".to_owned(),
                minor: 10_050,
                currency: Some("USD")
            }
        );
        assert_eq!(amount(0, "EUR").value, "0.00");
        assert_eq!(amount(5, "USD").value, "0.05");
        assert_eq!(amount(500, "JPY").value, "500");
        assert_eq!(amount(1_005, "KWD").value, "1.005");
        assert_eq!(
            serde_json::to_value(amount(10_050, "USD")).unwrap(),
            serde_json::json!({"value": "100.50", "minor": 10050, "currency": "USD"})
        );
        assert_eq!(
            serde_json::to_value(amount(10_050, "USD").without_currency()).unwrap(),
            serde_json::json!({"value": "100.50", "minor": 10050})
        );
    }

    #[test]
    fn money_the_code_cannot_read_is_a_decoding_error() {
        for (minor, code) in [(100, "XXX"), (100, "usd"), (-1, "USD")] {
            assert!(matches!(
                stored_money("amount_minor", minor, code),
                Err(sqlx::Error::ColumnDecode { ref index, .. }) if index == "amount_minor"
            ));
        }
    }
}
