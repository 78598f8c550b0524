-- Records a projection could not apply: the record could not be decoded, or PostgreSQL refused
-- its values. Each is stored in the transaction that moves the projection's checkpoint past it,
-- so every other record keeps flowing and a restart neither applies nor stores it again.
--
-- The record is kept as it was on the log (key, headers, payload), so `projectors dead-letters
-- retry` can decode and apply it again once the cause is fixed.
CREATE TABLE dead_letters (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection       text        NOT NULL,
    partition        int         NOT NULL,
    "offset"         bigint      NOT NULL,
    -- The `ce_type` header, when there is one.
    event_type       text,
    -- The aggregate the record belongs to, when it could be told.
    aggregate_id     uuid,
    error            text        NOT NULL,
    record_key       bytea,
    -- NULL when the record had no headers at all; otherwise names and values side by side, a
    -- NULL value for a header without one.
    header_names     text[],
    header_values    bytea[],
    payload          bytea,
    dead_lettered_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (projection, partition, "offset")
);
