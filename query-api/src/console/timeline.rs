//! One order as an operator follows it: its events in order, the command behind each and the
//! trace it was decided in, and which projections have applied its latest event.

use axum::extract::State;
use axum::Json;
use read_models::{checkpoint, order_history};
use serde::Serialize;
use service_kit::extract::Path;
use uuid::Uuid;

use super::Console;
use crate::http::{parse_uuid, ApiError, HistoryEvent};

#[derive(Debug, Serialize)]
pub(super) struct Timeline {
    order_id: Uuid,
    events: Vec<TimelineEvent>,
    /// Every projection with a checkpoint in the order's partition, and whether it has passed the
    /// order's latest event; empty when the events' positions are unknown (projected before
    /// they were recorded).
    projections: Vec<Reached>,
}

#[derive(Debug, Serialize)]
struct TimelineEvent {
    #[serde(flatten)]
    event: HistoryEvent,
    partition: Option<i32>,
    offset: Option<i64>,
    command_id: Option<Uuid>,
    trace_id: Option<String>,
    /// `CONSOLE_TRACE_URL` with the trace id in it; absent without either.
    trace_url: Option<String>,
}

#[derive(Debug, Serialize)]
struct Reached {
    projection: String,
    next_offset: i64,
    reached: bool,
}

#[tracing::instrument(skip_all, fields(order_id))]
pub(super) async fn order(
    State(console): State<Console>,
    Path(order_id): Path<String>,
) -> Result<Json<Timeline>, ApiError> {
    let order_id = parse_uuid("order_id", &order_id)?;
    tracing::Span::current().record("order_id", tracing::field::display(order_id));
    let rows = order_history::timeline(&console.pool, order_id, None).await?;
    if rows.is_empty() {
        return Err(ApiError::NotFound {
            resource: "order",
            key: order_id.to_string(),
        });
    }
    let latest = rows.last().and_then(|row| Some((row.log_partition?, row.log_offset?)));
    let projections = match latest {
        Some((partition, offset)) => checkpoint::in_partition(&console.pool, partition)
            .await?
            .into_iter()
            .map(|(projection, next_offset)| Reached {
                projection,
                next_offset,
                reached: next_offset > offset,
            })
            .collect(),
        None => Vec::new(),
    };
    let events = rows
        .into_iter()
        .map(|row| {
            let trace_url = row
                .trace_id
                .as_deref()
                .filter(|_| !console.trace_url.is_empty())
                .map(|id| console.trace_url.replace("{trace_id}", id));
            Ok(TimelineEvent {
                partition: row.log_partition,
                offset: row.log_offset,
                command_id: row.command_id,
                trace_id: row.trace_id.clone(),
                trace_url,
                event: HistoryEvent::try_from(row)?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(Timeline {
        order_id,
        events,
        projections,
    }))
}
