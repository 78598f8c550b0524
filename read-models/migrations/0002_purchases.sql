-- Read models of the purchase flow, both kept by the `purchases` projection in one transaction.
-- Only what may be stored of a card is here (brand, last four, expiry, fingerprint): the events
-- never carry the number or the CVC, and neither does any column.

-- One row per purchase, as of its latest event. Amounts are integer minor units of `currency`
-- (cents for USD); `version` is the `ce_sequence` of the last event applied.
CREATE TABLE purchases (
    purchase_id      uuid        PRIMARY KEY,
    user_id          uuid        NOT NULL,
    username         text        NOT NULL,
    order_id         uuid,
    amount_minor     bigint      NOT NULL CHECK (amount_minor >= 0),
    currency         text        NOT NULL,
    refunded_minor   bigint      NOT NULL CHECK (refunded_minor >= 0),
    status           text        NOT NULL
                                 CHECK (status IN ('requested', 'authorized', 'declined', 'refunded')),
    payment_method   text        NOT NULL,
    card_brand       text        NOT NULL,
    card_last4       text        NOT NULL CHECK (card_last4 ~ '^[0-9]{4}$'),
    card_exp_month   int         NOT NULL,
    card_exp_year    int         NOT NULL,
    card_fingerprint text        NOT NULL,
    authorization_id text,
    decline_reason   text,
    transaction_date timestamptz NOT NULL,
    requested_at     timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    version          bigint      NOT NULL
);

-- A user's purchases newest first, in keyset pages on (requested_at, purchase_id).
CREATE INDEX purchases_by_user ON purchases (user_id, requested_at DESC, purchase_id DESC);

-- Per user and currency: how many purchases were requested, and the sums authorized and
-- refunded, in minor units. Amounts of different currencies are never added together.
CREATE TABLE user_spend (
    user_id          uuid   NOT NULL,
    currency         text   NOT NULL,
    purchases        bigint NOT NULL CHECK (purchases >= 0),
    authorized_minor bigint NOT NULL CHECK (authorized_minor >= 0),
    refunded_minor   bigint NOT NULL CHECK (refunded_minor >= 0),
    PRIMARY KEY (user_id, currency)
);
