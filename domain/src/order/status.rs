//! Where an order stands in its lifecycle and with its payment, and where each may go next.

use crate::wire::wire_enum;

/// A status that moves along a lifecycle: spelled as on the wire, and allowed to move only to
/// the statuses its [`transitions!`] declaration lists.
pub trait Lifecycle: Copy {
    /// The status spelled `raw`, if any.
    fn from_wire(raw: &str) -> Option<Self>;
    fn as_str(self) -> &'static str;
    fn can_become(self, next: Self) -> bool;
}

/// Declares where each status of a lifecycle may go next, as `next`, and `can_become`,
/// `check_move` and [`Lifecycle`] from it.
macro_rules! transitions {
    (
        $(#[$next_doc:meta])*
        $status:ident { $($($from:ident)|+ => [$($to:ident),*],)+ }
    ) => {
        impl $status {
            $(#[$next_doc])*
            pub fn next(self) -> &'static [$status] {
                match self {
                    $($(Self::$from)|+ => &[$(Self::$to),*],)+
                }
            }

            pub fn can_become(self, next: $status) -> bool {
                self.next().contains(&next)
            }

            /// `Ok` when this status may move to `next`, else the statuses it may move to.
            pub fn check_move(self, next: $status) -> Result<(), &'static [$status]> {
                if self.can_become(next) {
                    Ok(())
                } else {
                    Err(self.next())
                }
            }
        }

        impl Lifecycle for $status {
            fn from_wire(raw: &str) -> Option<Self> {
                Self::from_wire(raw)
            }

            fn as_str(self) -> &'static str {
                self.as_str()
            }

            fn can_become(self, next: Self) -> bool {
                self.can_become(next)
            }
        }
    };
}

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

transitions! {
    /// The statuses an order may move to from this one; empty once delivered or cancelled.
    OrderStatus {
        Pending => [Confirmed, Cancelled],
        Confirmed => [Processing, Cancelled],
        Processing => [Shipped],
        Shipped => [Delivered],
        Delivered | Cancelled => [],
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

transitions! {
    /// The payment statuses reachable from this one. `failed` may fail again or be paid by a retry.
    PaymentStatus {
        Pending | Failed => [Paid, Failed],
        Paid => [Refunded],
        Refunded => [],
    }
}

wire_enum! {
    /// Where the stock of an order's catalog items stands.
    #[derive(Default)]
    pub enum StockStatus {
        /// No item of the order is in the catalog: nothing is reserved.
        #[default]
        NotTracked = "not_tracked",
        /// The stock reservation saga is reserving the items.
        Pending = "pending",
        /// Every catalog item is held for the order.
        Reserved = "reserved",
        /// The order was cancelled: what was held is given back.
        Released = "released",
        /// The order shipped: what was held left with it.
        Shipped = "shipped",
    }
}
