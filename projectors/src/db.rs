//! The schema the projectors keep, and which tables each projection owns. The migrations and
//! checkpoints live with the read models, in `read-models`.

use crate::projection::Projection;

pub use read_models::checkpoint::{checkpoints, claim, save_checkpoints};
pub use read_models::schema::{check_schema, migrate};
pub use read_models::Error as DbError;

/// The tables `projection` writes, in the order every transaction locks them (a live batch,
/// a rebuild's swap). Each table belongs to exactly one projection.
pub fn tables(projection: Projection) -> &'static [&'static str] {
    match projection {
        Projection::TrackUser => &["track_user"],
        Projection::OrderStatus => &["order_status"],
        Projection::OrderHistory => &["order_history"],
        Projection::Purchases => &["purchases", "user_spend"],
        Projection::Products => &["products"],
    }
}
