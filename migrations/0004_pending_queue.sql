-- +goose Up
-- Applying a transaction must cost as little as accepting it: the hot
-- partner balance applies everything that is accepted on it, one group after
-- another (measured on 2 cores: 160 µs per transaction before this change,
-- most of it in the three statements below).

-- 1. Pending work moves from a partial index on transactions to a queue
-- table of its own. A partial index on status makes every status change a
-- non-HOT update that writes a new entry into each of the table's indexes;
-- with the queue, completing a transaction is a HOT update of its row plus a
-- delete from a small table. Every row is updated once, soon after it is
-- inserted, so a page needs room for a second version of each of its rows:
-- fill factor 50 (measured: 80 made two thirds of the updates non-HOT, and
-- the group application 25% slower).
-- The ledger writes a queue row in the same statement as its transaction
-- and deletes it in the same commit as the outcome, so it carries no foreign
-- keys of its own; the invariant scan checks that a transaction is pending
-- exactly when it is queued.
CREATE TABLE pending_transactions (
    lane_account_id bigint NOT NULL,
    transaction_id  text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Transaction ids are time-ordered (UUIDv7), so a lane's oldest work
    -- comes first along this key.
    PRIMARY KEY (lane_account_id, transaction_id)
);
-- A queue churns: every row is deleted soon after it is inserted. Vacuum
-- it after every thousand dead rows, without the cost-based pauses.
ALTER TABLE pending_transactions SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_cost_delay = 0);
-- Processes older than this migration write pending work without the
-- queue: stop them before applying it (the ledger drops queue rows whose
-- transaction is no longer pending, but cannot see pending work that has
-- no queue row).
INSERT INTO pending_transactions (lane_account_id, transaction_id, created_at)
    SELECT lane_account_id, id, created_at FROM transactions WHERE status = 'pending';
DROP INDEX transactions_pending;
ALTER TABLE transactions SET (fillfactor = 50);

-- 2. Entries and events are written only by the ledger's group
-- application, from rows it has just read and locked in the same database
-- transaction; their foreign keys checked, row by row, what cannot be
-- otherwise and cost 40% of the write. The invariant scan
-- (ledger.CheckInvariants) checks that no entry or event points nowhere.
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_transaction_id_fkey,
    DROP CONSTRAINT ledger_entries_account_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_workspace_id_fkey;

-- +goose Down
ALTER TABLE events ADD CONSTRAINT events_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces (id);
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_transaction_id_fkey FOREIGN KEY (transaction_id) REFERENCES transactions (id),
    ADD CONSTRAINT ledger_entries_account_id_fkey FOREIGN KEY (account_id) REFERENCES ledger_accounts (id);
ALTER TABLE transactions RESET (fillfactor);
CREATE INDEX transactions_pending ON transactions (lane_account_id, created_at, id) WHERE status = 'pending';
DROP TABLE pending_transactions;
