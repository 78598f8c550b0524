//! What the catalog's clients and the stock reservation saga ask of a product, and the commands'
//! type names on the log.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{AdjustmentReason, ProductDescription, ProductName, StockDelta, StockQuantity};
use crate::message::messages;
use crate::money::Money;
use crate::pricing::Sku;

messages! {
    pub enum Command by product_id {
        DEFINE_PRODUCT_V1 = "orderstream.product.define.v1" =>
        /// Define the product sold under `sku`, or change its name, description or price.
        /// `product_id` is [`product_id`](super::product_id)`(sku)`.
        pub struct DefineProduct {
            product_id: Uuid,
            sku: Sku,
            name: ProductName,
            description: Option<ProductDescription>,
            price: Money,
            at: DateTime<Utc>,
        }

        RECEIVE_STOCK_V1 = "orderstream.product.receive-stock.v1" =>
        /// Add `quantity` units to the stock on hand.
        pub struct ReceiveStock { product_id: Uuid, quantity: StockQuantity, at: DateTime<Utc> }

        ADJUST_STOCK_V1 = "orderstream.product.adjust-stock.v1" =>
        /// Correct the stock on hand by `quantity` units (negative takes away), never below what is
        /// reserved.
        pub struct AdjustStock { product_id: Uuid, quantity: StockDelta, reason: AdjustmentReason, at: DateTime<Utc> }

        RESERVE_STOCK_V1 = "orderstream.product.reserve-stock.v1" =>
        /// Hold `quantity` units for order `order_id`, or refuse for lack of stock.
        pub struct ReserveStock { product_id: Uuid, order_id: Uuid, quantity: StockQuantity, at: DateTime<Utc> }

        RELEASE_STOCK_V1 = "orderstream.product.release-stock.v1" =>
        /// Give back what order `order_id` holds, if anything.
        pub struct ReleaseStock { product_id: Uuid, order_id: Uuid, at: DateTime<Utc> }

        SHIP_STOCK_V1 = "orderstream.product.ship-stock.v1" =>
        /// Ship what order `order_id` holds, if anything: it leaves the stock on hand.
        pub struct ShipStock { product_id: Uuid, order_id: Uuid, at: DateTime<Utc> }
    }
    superseded {}
}
