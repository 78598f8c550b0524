-- Read models of the order and track-user flow, and the projectors' checkpoints.

-- One row per customer name: how many orders were placed under it and when the first was.
-- `id` derives from the name (UUID v5), so a rebuild from the log yields identical rows.
-- Names compare bytewise ("C"), so keyset pages are in the same order on every server.
CREATE TABLE track_user (
    id         uuid        PRIMARY KEY,
    name       text        COLLATE "C" NOT NULL UNIQUE,
    counter    bigint      NOT NULL CHECK (counter > 0),
    created_at timestamptz NOT NULL
);

-- One row per order, as of its latest event.
CREATE TABLE order_status (
    order_id   uuid        PRIMARY KEY,
    name       text        NOT NULL,
    note       text,
    status     text        NOT NULL,
    placed_at  timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version    bigint      NOT NULL
);

-- Next offset to read per projection and events partition, written in the same transaction
-- as the rows it accounts for.
CREATE TABLE projection_checkpoint (
    projection  text   NOT NULL,
    partition   int    NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (projection, partition)
);
