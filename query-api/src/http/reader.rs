//! Who is reading, as the queries need it: a token with `read:all` (staff) reads every user's
//! rows; any other reader only its own, by a condition on `user_id` in the SQL itself, so a row
//! of another user is never fetched, and is answered exactly like a missing one.
//!
//! [`Read`] is what every query handler starts from: the reader, the consistency token to wait
//! for, and the database.

use std::future::Future;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use service_kit::auth::{Claims, READ_ALL};
use service_kit::Problem;
use sqlx::PgPool;
use uuid::Uuid;

use super::consistency::Consistency;
use super::page::found;
use super::{ApiContext, ApiError};

/// The rows a request may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reader {
    /// Staff: every user's rows.
    Everyone,
    /// A user: only the rows whose `user_id` is this.
    Owner(Uuid),
}

impl Reader {
    pub(super) fn of(claims: &Claims) -> Self {
        if claims.has_scope(READ_ALL) {
            Self::Everyone
        } else {
            Self::Owner(claims.user_id())
        }
    }

    /// The `user_id` every row read must have; `None` when any will do. Bound into the queries
    /// as `($n::uuid IS NULL OR user_id = $n)`.
    pub(super) fn owner(self) -> Option<Uuid> {
        match self {
            Self::Everyone => None,
            Self::Owner(owner) => Some(owner),
        }
    }

    /// Whether the reader may see what belongs to `user_id`.
    pub(super) fn may_read(self, user_id: Uuid) -> bool {
        self.owner().is_none_or(|owner| owner == user_id)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Reader {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Claims::from_request_parts(parts, state)
            .await
            .map(|claims| Self::of(&claims))
    }
}

/// One query: who reads, and after which write.
#[derive(Debug)]
pub(super) struct Read {
    context: ApiContext,
    reader: Reader,
    consistency: Consistency,
}

impl Read {
    pub(super) fn pool(&self) -> &PgPool {
        &self.context.pool
    }

    pub(super) fn reader(&self) -> Reader {
        self.reader
    }

    /// The `user_id` every row read must have; `None` when any will do.
    pub(super) fn owner(&self) -> Option<Uuid> {
        self.reader.owner()
    }

    /// Returns once `projection` has passed the request's consistency token, if it has one.
    pub(super) async fn wait(&self, projection: &'static str) -> Result<(), ApiError> {
        self.consistency.wait(&self.context, projection).await
    }

    /// A detail query: once `projection` has passed the consistency token, the row `fetch` reads,
    /// as clients see it, or a 404 naming `resource` and `id`. `fetch` only starts after the wait.
    pub(super) async fn one<R, T>(
        &self,
        projection: &'static str,
        resource: &'static str,
        id: Uuid,
        fetch: impl Future<Output = Result<Option<R>, sqlx::Error>>,
    ) -> Result<Json<T>, ApiError>
    where
        T: TryFrom<R, Error = sqlx::Error>,
    {
        self.wait(projection).await?;
        let row = found(fetch.await?, resource, id)?;
        Ok(Json(T::try_from(row)?))
    }
}

impl FromRequestParts<ApiContext> for Read {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, context: &ApiContext) -> Result<Self, Self::Rejection> {
        // In the order the handlers took them apart: no token is a 401 before a bad consistency
        // token is a 400.
        let reader = Reader::from_request_parts(parts, context)
            .await
            .map_err(IntoResponse::into_response)?;
        let consistency = Consistency::from_request_parts(parts, context)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            context: context.clone(),
            reader,
            consistency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, scopes: &[&str]) -> Claims {
        Claims {
            sub: sub.to_owned(),
            scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
            exp: 0,
            nbf: None,
            iat: None,
            iss: None,
            aud: vec![],
        }
    }

    #[test]
    fn a_user_reads_its_own_rows_and_staff_everyone() {
        let alice = Uuid::from_u128(1);
        let user = Reader::of(&claims(&alice.to_string(), &["read"]));
        assert_eq!(user, Reader::Owner(alice));
        assert!(user.may_read(alice));
        assert!(!user.may_read(Uuid::from_u128(2)));
        let staff = Reader::of(&claims("operator", &["read:all"]));
        assert_eq!(staff.owner(), None);
        assert!(staff.may_read(Uuid::from_u128(2)));
        // Both scopes: everything.
        assert_eq!(Reader::of(&claims("x", &["read", "read:all"])), Reader::Everyone);
    }
}
