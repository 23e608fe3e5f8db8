-- +goose Up
-- Bulk payouts. A batch is stored with all its items (transactions) in one
-- database transaction; its counters are kept on the row, updated once per
-- applied group, so reading a batch's progress never scans its items. The
-- group that brings pending to zero completes the batch and writes its
-- batch.completed event in the same database transaction.

CREATE TABLE batches (
    id           text PRIMARY KEY,
    workspace_id text NOT NULL REFERENCES workspaces (id),
    reference_id text NOT NULL,
    status       text NOT NULL CHECK (status IN ('processing', 'completed')),
    total        integer NOT NULL CHECK (total > 0),
    pending      integer NOT NULL CHECK (pending >= 0),
    completed    integer NOT NULL DEFAULT 0 CHECK (completed >= 0),
    failed       integer NOT NULL DEFAULT 0 CHECK (failed >= 0),
    -- Items whose referenceId an earlier transaction already holds with the
    -- same payload: they pay once, under that transaction.
    skipped      integer NOT NULL DEFAULT 0 CHECK (skipped >= 0),
    fingerprint  bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    UNIQUE (workspace_id, reference_id),
    CHECK (pending + completed + failed + skipped = total),
    CHECK ((status = 'completed') = (pending = 0)),
    CHECK ((status = 'completed') = (completed_at IS NOT NULL))
);
CREATE INDEX batches_workspace ON batches (workspace_id, id);

ALTER TABLE transactions ADD CONSTRAINT transactions_batch_fk FOREIGN KEY (batch_id) REFERENCES batches (id);
CREATE INDEX transactions_batch ON transactions (batch_id, id) WHERE batch_id IS NOT NULL;

-- +goose Down
DROP INDEX transactions_batch;
ALTER TABLE transactions DROP CONSTRAINT transactions_batch_fk;
DROP TABLE batches;
