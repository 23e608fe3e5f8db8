-- +goose Up
-- 1. Event catch-up in an order no reader can overtake. Event ids are made
-- when an apply group decides, before it commits, and two groups of one
-- workspace (its USD and EUR lanes) commit in either order: paging by id
-- let a poller that had seen a later id miss an earlier one for good. Each
-- event now carries its workspace's sequence number, taken from a counter
-- row that the writing transaction updates last and holds until it
-- commits: a second writer of the same workspace waits for the first to
-- commit before it numbers its own events, so sequence order is commit
-- order, per workspace, and an event that shows later always sorts later.
-- Writers of different workspaces never wait on each other. Existing
-- events are numbered in id order.
CREATE TABLE event_sequences (
    workspace_id text PRIMARY KEY,
    last_seq     bigint NOT NULL CHECK (last_seq > 0)
);
ALTER TABLE events ADD COLUMN seq bigint;
UPDATE events e SET seq = o.n
    FROM (SELECT id, row_number() OVER (PARTITION BY workspace_id ORDER BY id) AS n FROM events) o WHERE o.id = e.id;
ALTER TABLE events ALTER COLUMN seq SET NOT NULL;
INSERT INTO event_sequences (workspace_id, last_seq) SELECT workspace_id, max(seq) FROM events GROUP BY workspace_id;
CREATE UNIQUE INDEX events_workspace_seq ON events (workspace_id, seq);
-- Nothing reads events by (workspace, id) any more: one index less to
-- write per applied transaction.
DROP INDEX events_workspace;

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

-- 4. Webhook deliveries are listed newest first by id, so ids made before
-- they were time-ordered (random UUIDv4) are made time-ordered from their
-- creation time, keeping their random part; their attempts follow.
CREATE TEMPORARY TABLE delivery_ids ON COMMIT DROP AS
    SELECT id AS old, 'whd_' || lpad(to_hex((extract(epoch FROM created_at) * 1000)::bigint), 12, '0')
        || '7' || substr(id, 18, 19) AS new
    FROM webhook_deliveries WHERE substr(id, 17, 1) <> '7';
ALTER TABLE webhook_attempts DROP CONSTRAINT webhook_attempts_delivery_id_fkey;
UPDATE webhook_deliveries d SET id = m.new FROM delivery_ids m WHERE d.id = m.old;
UPDATE webhook_attempts a SET delivery_id = m.new FROM delivery_ids m WHERE a.delivery_id = m.old;
ALTER TABLE webhook_attempts ADD CONSTRAINT webhook_attempts_delivery_id_fkey
    FOREIGN KEY (delivery_id) REFERENCES webhook_deliveries (id);

-- 5. A failed attempt shows partners a category, never the error text,
-- which named the internal address a name resolved to: earlier attempts'
-- texts become the category they belong to.
UPDATE webhook_attempts SET error = CASE
        WHEN error LIKE 'refusing to connect%' OR error LIKE '%refusing to connect%' THEN 'blocked_address'
        WHEN error LIKE '%connection refused%' THEN 'connection_refused'
        WHEN error LIKE '%Client.Timeout%' OR error LIKE '%deadline exceeded%' OR error LIKE '%timeout%' THEN 'timeout'
        WHEN error LIKE '%tls%' OR error LIKE '%x509%' OR error LIKE '%certificate%' THEN 'tls_error'
        WHEN error LIKE '%no such host%' OR error LIKE '%lookup %' THEN 'dns_error'
        WHEN error LIKE 'redirects are not followed%' THEN 'http_status'
        WHEN error LIKE 'endpoint disabled%' THEN 'endpoint_disabled'
        ELSE 'connection_error' END
    WHERE error IS NOT NULL AND error NOT IN ('connection_refused', 'timeout', 'tls_error', 'blocked_address',
        'dns_error', 'connection_error', 'http_status', 'endpoint_disabled', 'request_error');

-- +goose Down
ALTER TABLE campaigns RENAME CONSTRAINT campaigns_window_in_order TO campaigns_check1;
ALTER TABLE campaigns RENAME CONSTRAINT campaigns_budget_covers_used TO campaigns_check;
DROP FUNCTION orbt_new_id(text);
CREATE INDEX events_workspace ON events (workspace_id, id);
DROP INDEX events_workspace_seq;
ALTER TABLE events DROP COLUMN seq;
DROP TABLE event_sequences;
