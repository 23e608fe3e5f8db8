-- +goose Up
-- A webhook endpoint's secret keys the HMAC of every delivery, so Orbt must
-- read it back: it rests sealed under the data key (package seal), bound
-- to its endpoint, as workspaces' signing secrets do since 0010. Until now
-- secret and previous_secret held it in clear text, readable by anyone
-- with a dump or a backup of the database. They stay for the rows made
-- before this migration (and by processes of the release before it, while
-- a rollout runs): every process seals what it finds in them when it
-- starts, and a delivery seals the one it reads, clearing the clear text.
ALTER TABLE webhook_endpoints ALTER COLUMN secret DROP NOT NULL,
    ADD COLUMN secret_sealed bytea,
    ADD COLUMN previous_secret_sealed bytea,
    ADD CONSTRAINT webhook_endpoints_secret_present CHECK (secret IS NOT NULL OR secret_sealed IS NOT NULL);
-- What is left to seal, found without a scan.
CREATE INDEX webhook_endpoints_clear_secrets ON webhook_endpoints (id)
    WHERE secret IS NOT NULL OR previous_secret IS NOT NULL;

-- +goose Down
-- +goose StatementBegin
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM webhook_endpoints WHERE secret IS NULL) THEN
        RAISE EXCEPTION 'webhook secrets are sealed: undoing this migration would lose them';
    END IF;
END $$;
-- +goose StatementEnd
DROP INDEX webhook_endpoints_clear_secrets;
ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_secret_present,
    DROP COLUMN previous_secret_sealed,
    DROP COLUMN secret_sealed,
    ALTER COLUMN secret SET NOT NULL;
