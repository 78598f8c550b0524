//! The one mapping from query failures to HTTP answers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use service_kit::extract::InvalidParameter;
use service_kit::Problem;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ApiError {
    /// 404: nothing under that key (quoted back cut short: a name in the path may be long).
    #[error("{resource} {} was not found", super::page::quoted(.key))]
    NotFound { resource: &'static str, key: String },
    /// 404: no product is sold under that SKU.
    #[error("no product has SKU `{sku}`")]
    ProductNotFound { sku: String },
    /// 422: a path segment is well formed but not a value the domain accepts (a SKU).
    #[error(transparent)]
    InvalidField(domain::InvalidField),
    /// 400: a query parameter, path segment or header is malformed.
    #[error(transparent)]
    InvalidParameter(#[from] InvalidParameter),
    /// 503 with `Retry-After`: the projection has not reached the consistency token in time.
    #[error("the `{projection}` projection has not reached the consistency token within {waited_ms} ms")]
    NotYetConsistent { projection: &'static str, waited_ms: u128 },
    /// 503 with `Retry-After`: PostgreSQL is unreachable or failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// 503 with `Retry-After`: Kafka did not answer the console's questions.
    #[error(transparent)]
    Kafka(#[from] service_kit::kafka::Error),
    /// 500: the console's settings name a schema PostgreSQL cannot have.
    #[error(transparent)]
    Schema(read_models::Error),
    /// 500: a blocking Kafka call panicked or was cancelled.
    #[error("a blocking Kafka call did not finish")]
    Blocking,
}

impl From<read_models::Error> for ApiError {
    fn from(error: read_models::Error) -> Self {
        match error {
            read_models::Error::Sql(error) => Self::Database(error),
            other => Self::Schema(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match &self {
            Self::NotFound { .. } => {
                Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(self.to_string())
            }
            Self::ProductNotFound { .. } => {
                Problem::new(StatusCode::NOT_FOUND, "product-not-found", "Product not found")
                    .field("sku")
                    .detail(self.to_string())
            }
            Self::InvalidField(invalid) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", "Invalid field")
                    .field(invalid.field)
                    .detail(self.to_string())
            }
            Self::InvalidParameter(invalid) => invalid.problem(),
            Self::NotYetConsistent { .. } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not-yet-consistent",
                "Read model not yet consistent",
            )
            .detail(self.to_string())
            .retry_after(1),
            // No internals for the client; the cause is logged by the middleware.
            Self::Database(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database-unavailable",
                "Read models unavailable",
            )
            .retry_after(2),
            Self::Kafka(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "kafka-unavailable",
                "Kafka unavailable",
            )
            .retry_after(2),
            Self::Schema(_) | Self::Blocking => Problem::internal(),
        };
        service_kit::problem::respond(problem, &self)
    }
}
