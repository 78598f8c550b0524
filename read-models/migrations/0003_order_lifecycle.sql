-- The order lifecycle on the read side: `order_status` learns the order's payment, what it costs
-- and when each transition happened, and `order_history` keeps every event of every order.
--
-- Every new column of `order_status` is nullable or has a default, so the rows written before
-- this migration (orders placed without items, nothing after `OrderPlaced`) are already right:
-- pending payment, no items, no totals, no transitions.

ALTER TABLE order_status
    -- Where the payment stands: pending, paid, failed (the last attempt failed) or refunded.
    ADD COLUMN payment_status         text        NOT NULL DEFAULT 'pending'
                                                  CHECK (payment_status IN ('pending', 'paid', 'failed', 'refunded')),
    -- From the priced details of `OrderPlaced`; NULL (and 0 items) for an order placed without.
    ADD COLUMN user_id                uuid,
    ADD COLUMN currency               text,
    -- The sum of the line items' quantities.
    ADD COLUMN item_count             int         NOT NULL DEFAULT 0 CHECK (item_count >= 0),
    -- The totals priced when the order was placed, in minor units of `currency`; never repriced.
    ADD COLUMN subtotal_minor         bigint      CHECK (subtotal_minor >= 0),
    ADD COLUMN tax_minor              bigint      CHECK (tax_minor >= 0),
    ADD COLUMN shipping_minor         bigint      CHECK (shipping_minor >= 0),
    ADD COLUMN total_minor            bigint      CHECK (total_minor >= 0),
    ADD COLUMN carrier                text,
    ADD COLUMN tracking_number        text,
    ADD COLUMN cancel_reason          text,
    -- The reason of the latest failed payment; kept when a retry pays.
    ADD COLUMN payment_failure_reason text,
    -- The purchase that paid the order; kept after a refund.
    ADD COLUMN paid_with              uuid,
    -- When each transition happened, by the event's time; NULL until it has. `payment_failed_at`
    -- is the time of the latest failure.
    ADD COLUMN confirmed_at           timestamptz,
    ADD COLUMN processing_started_at  timestamptz,
    ADD COLUMN shipped_at             timestamptz,
    ADD COLUMN delivered_at           timestamptz,
    ADD COLUMN cancelled_at           timestamptz,
    ADD COLUMN paid_at                timestamptz,
    ADD COLUMN payment_failed_at      timestamptz,
    ADD COLUMN refunded_at            timestamptz,
    ADD CONSTRAINT order_status_status_check
        CHECK (status IN ('pending', 'confirmed', 'processing', 'shipped', 'delivered', 'cancelled'));

-- The order listing is newest first in keyset pages on (placed_at, order_id). Each filter gets an
-- index ending in that key, so a filtered page is one range scan in listing order rather than a
-- sort of every match.
CREATE INDEX order_status_by_placed         ON order_status (placed_at, order_id);
CREATE INDEX order_status_by_status         ON order_status (status, placed_at, order_id);
CREATE INDEX order_status_by_payment_status ON order_status (payment_status, placed_at, order_id);
CREATE INDEX order_status_by_user           ON order_status (user_id, placed_at, order_id) WHERE user_id IS NOT NULL;
CREATE INDEX order_status_by_name           ON order_status (name, placed_at, order_id);

-- Every event of every order, in the order's own sequence: `version` is the event's
-- `ce_sequence`, `event_type` its `ce_type`, `occurred_at` the event's time and `data` the event
-- as it is on the log (orders carry no card data). Kept by its own projection, `order_history`.
CREATE TABLE order_history (
    order_id    uuid        NOT NULL,
    version     bigint      NOT NULL,
    event_type  text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    data        jsonb       NOT NULL,
    PRIMARY KEY (order_id, version)
);
