-- +goose Up
-- The Orbt-compatible partner API (/api/partner/v1): integer customer ids,
-- customers found by email, and request-signing secrets that rotate and
-- rest sealed.

-- 1. Orbt's partner API names a customer by an integer. Every consumer,
-- however it was created, gets one from one sequence; paths look it up
-- within the caller's workspace (another workspace's number is a 404), and
-- lists page by it.
ALTER TABLE consumers ADD COLUMN number bigint GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX consumers_number ON consumers (workspace_id, number);

-- 2. A customer created there is found again by its email (one wallet per
-- email and currency), case-insensitively.
CREATE INDEX consumers_email ON consumers (workspace_id, lower(email)) WHERE email IS NOT NULL;

-- 3. The signing secret keys an HMAC, so it must be read back: it rests
-- sealed under the data key (package seal), bound to its workspace.
-- signing_secret (clear text) is what workspaces made before this
-- migration hold; the store seals it and clears it the first time it reads
-- it.
ALTER TABLE workspaces ALTER COLUMN signing_secret DROP NOT NULL,
    ADD COLUMN signing_secret_sealed bytea,
    ADD CONSTRAINT workspaces_signing_secret_present
        CHECK (signing_secret IS NOT NULL OR signing_secret_sealed IS NOT NULL);

-- 4. A rotated-out secret keeps verifying for a day, so a partner can roll
-- its clients over; every one does, however many rotations that day made
-- (a double click must not cut live clients off). Expired rows are
-- deleted by the next rotation.
CREATE TABLE previous_signing_secrets (
    workspace_id text NOT NULL REFERENCES workspaces (id),
    sealed       bytea NOT NULL,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX previous_signing_secrets_workspace ON previous_signing_secrets (workspace_id, expires_at);

-- +goose Down
-- +goose StatementBegin
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM workspaces WHERE signing_secret IS NULL) THEN
        RAISE EXCEPTION 'signing secrets are sealed: undoing this migration would lose them';
    END IF;
END $$;
-- +goose StatementEnd
DROP TABLE previous_signing_secrets;
ALTER TABLE workspaces DROP CONSTRAINT workspaces_signing_secret_present,
    DROP COLUMN signing_secret_sealed,
    ALTER COLUMN signing_secret SET NOT NULL;
DROP INDEX consumers_email;
ALTER TABLE consumers DROP COLUMN number;
