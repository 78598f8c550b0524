-- Webhooks: the notifier's registrations, the deliveries it owes them, and who owns each order
-- and purchase. Kept in the read-model schema so each deployment has one migration history.

-- One row per registered webhook. `owner` is the user id of the token that registered it; every
-- read and delete says `WHERE owner = $sub`. `secret` is the signing key itself (32 bytes): the
-- notifier must sign with it, so it cannot be stored hashed. `created_at` is the database's clock;
-- a webhook receives only events that happened after it.
CREATE TABLE webhooks (
    webhook_id  uuid        PRIMARY KEY,
    owner       uuid        NOT NULL,
    url         text        NOT NULL CHECK (char_length(url) <= 2048),
    events      text[]      NOT NULL CHECK (cardinality(events) > 0),
    description text        CHECK (char_length(description) <= 500),
    secret      bytea       NOT NULL CHECK (octet_length(secret) = 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhooks_by_owner ON webhooks (owner);

-- One row per (webhook, event): the unique key makes a redelivered event, or one fanned out by
-- two replicas, a no-op. `payload` is the public view of the event that is sent, never the raw
-- event. A pending row is due at `next_attempt_at`; a dispatcher leases it by moving that time
-- forward, so a replica that dies with a lease only delays the delivery until the lease expires.
CREATE TABLE webhook_deliveries (
    delivery_id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id      uuid        NOT NULL REFERENCES webhooks ON DELETE CASCADE,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    payload         jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    last_status     integer,
    last_error      text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (webhook_id, event_id)
);

-- A webhook's deliveries in keyset pages, and the cascade when it is deleted.
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, delivery_id);

-- What the dispatchers lease from: only pending rows, oldest due first.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

-- The owner of each order and purchase, from the event that created it, for the later events
-- that do not name their user (an order shipped, a purchase refunded).
CREATE TABLE webhook_owners (
    aggregate_id uuid PRIMARY KEY,
    owner        uuid NOT NULL
);
