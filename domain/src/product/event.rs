//! What happened to a product, and the events' type names on the log. Every event names the SKU,
//! so a reader of the log needs no lookup to know which product it is about.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{AdjustmentReason, ProductDescription, ProductName, StockDelta, StockQuantity};
use crate::message::messages;
use crate::money::Money;
use crate::pricing::Sku;

messages! {
    pub enum Event by product_id {
        PRODUCT_DEFINED_V1 = "orderstream.product.defined.v1" =>
        /// A product entered the catalog, with no stock yet.
        pub struct ProductDefined {
            product_id: Uuid,
            sku: Sku,
            name: ProductName,
            description: Option<ProductDescription>,
            price: Money,
            defined_at: DateTime<Utc>,
        }

        PRODUCT_CHANGED_V1 = "orderstream.product.changed.v1" =>
        /// A product's name, description or price changed; every field is the new value.
        pub struct ProductChanged {
            product_id: Uuid,
            sku: Sku,
            name: ProductName,
            description: Option<ProductDescription>,
            price: Money,
            changed_at: DateTime<Utc>,
        }

        STOCK_RECEIVED_V1 = "orderstream.product.stock-received.v1" =>
        /// `quantity` units came in; `on_hand` is the stock on hand after them.
        pub struct StockReceived {
            product_id: Uuid,
            sku: Sku,
            quantity: StockQuantity,
            on_hand: u64,
            received_at: DateTime<Utc>,
        }

        STOCK_ADJUSTED_V1 = "orderstream.product.stock-adjusted.v1" =>
        /// The stock on hand was corrected by `quantity` units; `on_hand` is what it is after.
        pub struct StockAdjusted {
            product_id: Uuid,
            sku: Sku,
            quantity: StockDelta,
            reason: AdjustmentReason,
            on_hand: u64,
            adjusted_at: DateTime<Utc>,
        }

        STOCK_RESERVED_V1 = "orderstream.product.stock-reserved.v1" =>
        /// `quantity` units are held for order `order_id`.
        pub struct StockReserved {
            product_id: Uuid,
            sku: Sku,
            order_id: Uuid,
            quantity: StockQuantity,
            reserved_at: DateTime<Utc>,
        }

        STOCK_RESERVATION_REFUSED_V1 = "orderstream.product.stock-reservation-refused.v1" =>
        /// Order `order_id` asked for `quantity` units while only `available` were free: nothing is
        /// held for it.
        pub struct StockReservationRefused {
            product_id: Uuid,
            sku: Sku,
            order_id: Uuid,
            quantity: StockQuantity,
            available: u64,
            refused_at: DateTime<Utc>,
        }

        STOCK_RELEASED_V1 = "orderstream.product.stock-released.v1" =>
        /// The `quantity` units held for order `order_id` are free again.
        pub struct StockReleased {
            product_id: Uuid,
            sku: Sku,
            order_id: Uuid,
            quantity: StockQuantity,
            released_at: DateTime<Utc>,
        }

        STOCK_SHIPPED_V1 = "orderstream.product.stock-shipped.v1" =>
        /// The `quantity` units held for order `order_id` left with it: on hand and reserved both go
        /// down by them.
        pub struct StockShipped {
            product_id: Uuid,
            sku: Sku,
            order_id: Uuid,
            quantity: StockQuantity,
            shipped_at: DateTime<Utc>,
        }
    }
    superseded {}
}

impl Event {
    /// When the fact happened, by the clock of the edge or reactor that sent the command.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Self::ProductDefined(e) => e.defined_at,
            Self::ProductChanged(e) => e.changed_at,
            Self::StockReceived(e) => e.received_at,
            Self::StockAdjusted(e) => e.adjusted_at,
            Self::StockReserved(e) => e.reserved_at,
            Self::StockReservationRefused(e) => e.refused_at,
            Self::StockReleased(e) => e.released_at,
            Self::StockShipped(e) => e.shipped_at,
        }
    }
}
