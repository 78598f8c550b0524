-- Where an order was placed, from `OrderPlaced` (`orderstream.order.placed.v2`): api, web, mobile
-- or pos.
--
-- Orders placed before orders carried a channel were placed through the API, and a v1
-- `OrderPlaced` is upcast to `channel = api` when it is decoded, so the default is right for every
-- row written before this migration: no rebuild is needed to fill the column.

ALTER TABLE order_status
    ADD COLUMN channel text NOT NULL DEFAULT 'api'
                       CHECK (channel IN ('api', 'web', 'mobile', 'pos'));
