-- The product catalog on the read side, and where the stock of each order stands.

-- One row per product as of its latest event, kept by the `products` projection. Prices are
-- integer minor units of `currency`; `on_hand` is the stock on hand, `reserved` the part of it
-- held for orders (what a new order may take is the difference). `version` is the `ce_sequence`
-- of the last event applied; the times are the events' own.
CREATE TABLE products (
    product_id  uuid        PRIMARY KEY,
    -- The catalog lists by SKU, bytewise, in keyset pages on this unique index.
    sku         text        COLLATE "C" NOT NULL UNIQUE,
    name        text        NOT NULL,
    description text,
    price_minor bigint      NOT NULL CHECK (price_minor >= 0),
    currency    text        NOT NULL,
    on_hand     bigint      NOT NULL CHECK (on_hand >= 0),
    reserved    bigint      NOT NULL CHECK (reserved >= 0),
    version     bigint      NOT NULL,
    defined_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- Orders placed before orders tracked stock have no catalog items: `not_tracked` is right for
-- every row written before this migration, so no rebuild is needed to fill the column.
ALTER TABLE order_status
    ADD COLUMN stock_status text NOT NULL DEFAULT 'not_tracked'
                            CHECK (stock_status IN ('not_tracked', 'pending', 'reserved', 'released', 'shipped'));
