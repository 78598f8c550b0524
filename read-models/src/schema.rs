//! The migrations, applied inside a named schema, so each deployment (and each test) has its own
//! tables.

use sqlx::PgPool;

use crate::{Error, Result};

/// Creates `schema` if needed and applies the migrations inside it.
///
/// The files under `migrations/` never change once released: each database keeps the checksum of
/// every migration applied to it, and refuses a file that no longer matches.
pub async fn migrate(pool: &PgPool, schema: &str) -> Result<()> {
    check_schema(schema)?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .execute(pool)
        .await?;
    sqlx::migrate!("./migrations").run(pool).await?;
    Ok(())
}

/// Schema names are spliced into SQL (quoted), so only these characters are accepted.
pub fn check_schema(schema: &str) -> Result<()> {
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidSchema(schema.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_lowercase_schema_names_are_accepted() {
        for good in ["public", "orders_2", "_x"] {
            assert!(check_schema(good).is_ok(), "{good}");
        }
        let long = "a".repeat(64);
        for bad in ["", "Public", "a-b", "a\"b", long.as_str()] {
            assert!(matches!(check_schema(bad), Err(Error::InvalidSchema(_))), "{bad}");
        }
    }
}
