-- Where each order event sits on the log and what caused it, for the operator console's order
-- timeline: the events partition and offset (so it can tell which projections have passed it),
-- the command that decided it (`ce_causationid`) and the trace it was decided in (the trace id
-- of its `traceparent`). All are facts of the log, so a replay writes the same values; NULL in
-- rows projected before this migration and for events that carry none.
ALTER TABLE order_history
    ADD COLUMN log_partition int,
    ADD COLUMN log_offset    bigint,
    ADD COLUMN command_id    uuid,
    ADD COLUMN trace_id      text;
