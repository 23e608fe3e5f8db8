-- +goose Up
-- 1. Event catch-up in an order no reader can overtake. Event ids are made
-- when an apply group decides, before it commits, and two groups commit in
-- either order: paging by id let a poller that had seen a later id miss an
-- earlier one for good. Each event now records the id of the database
-- transaction that wrote it (xid) and a sequence number; GET /v1/events
-- pages by (xid, seq) and shows only events whose transaction is older than
-- every transaction still running (pg_snapshot_xmin), so every event that
-- can appear later sorts after every event already shown. Existing events
-- keep their id order.
ALTER TABLE events ADD COLUMN xid xid8, ADD COLUMN seq bigint;
CREATE SEQUENCE events_seq OWNED BY events.seq;
UPDATE events e SET xid = pg_current_xact_id(), seq = o.n
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM events) o WHERE o.id = e.id;
SELECT setval('events_seq', COALESCE((SELECT max(seq) FROM events), 0) + 1, false);
ALTER TABLE events ALTER COLUMN xid SET DEFAULT pg_current_xact_id(), ALTER COLUMN xid SET NOT NULL,
    ALTER COLUMN seq SET DEFAULT nextval('events_seq'), ALTER COLUMN seq SET NOT NULL;
CREATE INDEX events_workspace_order ON events (workspace_id, xid, seq);

-- 2. Ids made in Postgres, where only a join knows how many rows there are
-- (a webhook fan-out): the layout of store.NewID, prefix_ and a UUIDv7 in
-- 32 hex digits, so they sort by creation time like every other id and a
-- list can sort and page by them. The random part comes from
-- gen_random_uuid(); its version nibble is replaced by 7.
-- +goose StatementBegin
CREATE FUNCTION orbt_new_id(prefix text) RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT prefix || '_' || lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
        || '7' || substr(r, 14, 3) || substr(r, 17, 16)
    FROM (SELECT replace(gen_random_uuid()::text, '-', '') AS r) g
$$;
-- +goose StatementEnd

-- 3. Constraints named for what they mean, so a violation maps to the
-- right answer (a startsAt after endsAt is not a budget problem).
ALTER TABLE campaigns RENAME CONSTRAINT campaigns_check TO campaigns_budget_covers_used;
ALTER TABLE campaigns RENAME CONSTRAINT campaigns_check1 TO campaigns_window_in_order;

-- +goose Down
ALTER TABLE campaigns RENAME CONSTRAINT campaigns_window_in_order TO campaigns_check1;
ALTER TABLE campaigns RENAME CONSTRAINT campaigns_budget_covers_used TO campaigns_check;
DROP FUNCTION orbt_new_id(text);
DROP INDEX events_workspace_order;
ALTER TABLE events DROP COLUMN seq, DROP COLUMN xid;
