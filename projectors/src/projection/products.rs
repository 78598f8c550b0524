//! `products`: one row per product of the catalog as of its latest event: what it is called and
//! costs, its stock on hand and the part of it held for orders.
//!
//! Folded like every [`Latest`] read model: the products a batch changes but did not define are
//! loaded with one query, the batch's events applied in log order, every touched row written with
//! one upsert ([`read_models::products`]).

use domain::product;
use read_models::products::{self as table, ProductRow};
use sqlx::PgConnection;

use super::{fold_batch, Latest, LoggedEvent};

/// The `products` read model.
#[derive(Debug)]
struct Products;

impl Latest for Products {
    type Event = product::Event;
    type Row = ProductRow;

    fn start(&mut self, defined: &product::ProductDefined, version: i64) -> ProductRow {
        ProductRow {
            product_id: defined.product_id,
            sku: defined.sku.as_str().to_owned(),
            name: defined.name.as_str().to_owned(),
            description: defined.description.as_ref().map(|d| d.as_str().to_owned()),
            price_minor: defined.price.minor(),
            currency: defined.price.currency().code().to_owned(),
            on_hand: 0,
            reserved: 0,
            version,
            defined_at: defined.defined_at,
            updated_at: defined.defined_at,
        }
    }

    fn evolve(&mut self, row: &mut ProductRow, event: &product::Event, version: i64) {
        evolve(row, event, version);
    }
}

/// Applies one event after the definition to `row`.
///
/// Mirrors `domain::product::Product::evolve`: receipts and adjustments carry the stock on hand
/// they leave; reservations, releases and shipments move the units they name. Stock figures
/// saturate rather than wrap, as the aggregate's do: a fact that does not fit cannot have been
/// decided. A refused reservation holds nothing and only counts towards `version` and
/// `updated_at`, which follow the log.
fn evolve(row: &mut ProductRow, event: &product::Event, version: i64) {
    use product::Event as E;
    match event {
        E::ProductDefined(_) | E::StockReservationRefused(_) => {}
        E::ProductChanged(changed) => {
            row.name = changed.name.as_str().to_owned();
            row.description = changed.description.as_ref().map(|d| d.as_str().to_owned());
            row.price_minor = changed.price.minor();
            row.currency = changed.price.currency().code().to_owned();
        }
        E::StockReceived(received) => row.on_hand = units(received.on_hand),
        E::StockAdjusted(adjusted) => row.on_hand = units(adjusted.on_hand),
        E::StockReserved(reserved) => row.reserved = row.reserved.saturating_add(quantity(reserved.quantity)),
        E::StockReleased(released) => {
            row.reserved = row.reserved.saturating_sub(quantity(released.quantity)).max(0);
        }
        E::StockShipped(shipped) => {
            let units = quantity(shipped.quantity);
            row.on_hand = row.on_hand.saturating_sub(units).max(0);
            row.reserved = row.reserved.saturating_sub(units).max(0);
        }
    }
    row.updated_at = event.occurred_at();
    row.version = version;
}

/// A stock figure as a `bigint`; no stock the domain can reach comes near the limit.
fn units(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn quantity(quantity: product::StockQuantity) -> i64 {
    i64::from(quantity.get())
}

#[tracing::instrument(skip_all, fields(events = events.len()))]
pub(super) async fn apply(tx: &mut PgConnection, events: &[LoggedEvent]) -> Result<(), sqlx::Error> {
    let rows = fold_batch(tx, &mut Products, events).await?;
    table::upsert(tx, rows.into_values().collect()).await
}

#[cfg(test)]
mod tests;
