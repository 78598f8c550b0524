//! Where an order stands in its lifecycle and with its payment, and where each may go next.

use crate::wire::wire_enum;

wire_enum! {
    /// Where an order stands in its lifecycle.
    pub enum OrderStatus {
        Pending = "pending",
        Confirmed = "confirmed",
        Processing = "processing",
        Shipped = "shipped",
        Delivered = "delivered",
        Cancelled = "cancelled",
    }
}

impl OrderStatus {
    /// The statuses an order may move to from this one; empty once delivered or cancelled.
    pub fn next(self) -> &'static [OrderStatus] {
        match self {
            Self::Pending => &[Self::Confirmed, Self::Cancelled],
            Self::Confirmed => &[Self::Processing, Self::Cancelled],
            Self::Processing => &[Self::Shipped],
            Self::Shipped => &[Self::Delivered],
            Self::Delivered | Self::Cancelled => &[],
        }
    }

    pub fn can_become(self, next: OrderStatus) -> bool {
        self.next().contains(&next)
    }
}

wire_enum! {
    /// Where an order's payment stands.
    pub enum PaymentStatus {
        Pending = "pending",
        Paid = "paid",
        /// The last attempt failed; another may still pay.
        Failed = "failed",
        Refunded = "refunded",
    }
}

impl PaymentStatus {
    /// The payment statuses reachable from this one. `failed` may fail again or be paid by a retry.
    pub fn next(self) -> &'static [PaymentStatus] {
        match self {
            Self::Pending | Self::Failed => &[Self::Paid, Self::Failed],
            Self::Paid => &[Self::Refunded],
            Self::Refunded => &[],
        }
    }

    pub fn can_become(self, next: PaymentStatus) -> bool {
        self.next().contains(&next)
    }
}
