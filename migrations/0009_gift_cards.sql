-- +goose Up
-- Gift cards: the brand catalog, which brands each workspace may redeem,
-- redemptions and the money they move, the sandbox provider's memory, and
-- the links and sessions of the consumer pages.

-- 1. The catalog. Operators load it (orbt brands import, idempotent by id);
-- a brand is open value between min and max, or the fixed denominations
-- when it has any. provider names the Provider that sells its cards.
CREATE TABLE brands (
    id            text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    currency      char(3) NOT NULL,
    min_amount    bigint NOT NULL CHECK (min_amount > 0),
    max_amount    bigint NOT NULL,
    denominations bigint[] NOT NULL DEFAULT '{}',
    provider      text NOT NULL DEFAULT 'sandbox',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT brands_range_in_order CHECK (max_amount >= min_amount)
);

-- The sandbox provider's brands, in every database: they answer
-- deterministically (see giftcard.Sandbox).
INSERT INTO brands (id, name, currency, min_amount, max_amount, denominations) VALUES
    ('sandbox-coffee', 'Sandbox Coffee', 'USD', 500, 50000, '{}'),
    ('sandbox-books', 'Sandbox Books', 'USD', 1000, 5000, '{1000,2500,5000}'),
    ('sandbox-declines', 'Sandbox Declines', 'USD', 100, 100000, '{}'),
    ('sandbox-slow', 'Sandbox Slow', 'USD', 500, 50000, '{}');

CREATE TABLE workspace_brands (
    workspace_id text NOT NULL REFERENCES workspaces (id),
    brand_id     text NOT NULL REFERENCES brands (id),
    PRIMARY KEY (workspace_id, brand_id)
);

-- 2. Redemptions. Accepted rows are pending; the worker holds the amount
-- (processing), calls the provider outside any database transaction, then
-- captures (completed) or releases (failed). A card's code and pin are
-- stored sealed (AES-GCM under ORBT_DATA_KEY, bound to the redemption id).
-- brand_id has no foreign key: a brand the workspace cannot redeem is a
-- failure reason (brand_not_enabled), not a refused request.
CREATE TABLE redemptions (
    id                text PRIMARY KEY,
    workspace_id      text NOT NULL REFERENCES workspaces (id),
    reference_id      text NOT NULL,
    wallet_id         text NOT NULL REFERENCES wallets (id),
    brand_id          text NOT NULL,
    amount            bigint NOT NULL CHECK (amount > 0),
    currency          char(3) NOT NULL,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    failure_reason    text,
    fingerprint       bytea NOT NULL,
    -- Provider calls made (counted before each), and of them those the
    -- provider definitely did nothing with: only when the two are equal
    -- may a hold be released as provider_unavailable.
    provider_attempts integer NOT NULL DEFAULT 0,
    provider_nothing  integer NOT NULL DEFAULT 0,
    code_sealed       bytea,
    pin_sealed        bytea,
    card_expires_at   timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    UNIQUE (workspace_id, reference_id),
    CONSTRAINT redemptions_failed_has_reason CHECK ((status = 'failed') = (failure_reason IS NOT NULL)),
    CONSTRAINT redemptions_completed_has_code CHECK ((status = 'completed') = (code_sealed IS NOT NULL))
);
CREATE INDEX redemptions_workspace ON redemptions (workspace_id, id);
CREATE INDEX redemptions_wallet ON redemptions (wallet_id, id);
-- The relay reads only the open ones.
CREATE INDEX redemptions_open ON redemptions (updated_at) WHERE status IN ('pending', 'processing');

-- 3. The money. A hold moves the amount from the wallet to its workspace's
-- clearing account in the wallet's currency (an edge of the lane, like
-- funding and settlement) and adds it to the wallet account's held; a
-- capture moves it on to settlement, a release back to the wallet. Each
-- step is a completed transaction with one pair of entries, tied to its
-- redemption, at most one of each kind per redemption; steps have no
-- referenceId of their own (the redemption has it).
--
-- Each step commits on its own, and a row every step of a workspace
-- updated would let only one commit at a time through (measured: 220
-- redemptions/s, every other connection waiting on the row). So a lane's
-- clearing and settlement accounts are split in shards, a wallet's steps
-- always in shard (its account id mod 16), made when first used; shard 0
-- is every other edge's.
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_kind_check,
    ADD CONSTRAINT ledger_accounts_kind_check CHECK (kind IN ('partner', 'wallet', 'funding', 'settlement', 'clearing')),
    ADD COLUMN held bigint NOT NULL DEFAULT 0 CONSTRAINT ledger_accounts_held_not_negative CHECK (held >= 0),
    ADD COLUMN shard smallint NOT NULL DEFAULT 0 CONSTRAINT ledger_accounts_shard_in_range CHECK (shard BETWEEN 0 AND 63),
    ADD CONSTRAINT ledger_accounts_only_step_edges_shard CHECK (shard = 0 OR kind IN ('clearing', 'settlement'));
DROP INDEX ledger_accounts_edges;
CREATE UNIQUE INDEX ledger_accounts_edges ON ledger_accounts (workspace_id, kind, currency, shard) WHERE kind <> 'wallet';
INSERT INTO ledger_accounts (workspace_id, kind, currency)
    SELECT workspace_id, 'clearing', currency FROM ledger_accounts WHERE kind = 'partner'
    ON CONFLICT (workspace_id, kind, currency, shard) WHERE kind <> 'wallet' DO NOTHING;

ALTER TABLE transactions DROP CONSTRAINT transactions_type_check,
    ADD CONSTRAINT transactions_type_check
        CHECK (type IN ('credit', 'debit', 'funding', 'redemption_hold', 'redemption_capture', 'redemption_release')),
    ADD COLUMN redemption_id text,
    ALTER COLUMN reference_id DROP NOT NULL,
    ADD CONSTRAINT transactions_steps_belong_to_redemptions
        CHECK ((type LIKE 'redemption\_%') = (redemption_id IS NOT NULL) AND (redemption_id IS NULL) = (reference_id IS NOT NULL));
CREATE UNIQUE INDEX transactions_redemption_step ON transactions (redemption_id, type) WHERE redemption_id IS NOT NULL;

-- Campaign reports: what its wallets redeemed, and how many wallets it has.
ALTER TABLE campaigns ADD COLUMN redeemed bigint NOT NULL DEFAULT 0 CHECK (redeemed >= 0);
CREATE INDEX wallets_campaign ON wallets (campaign_id) WHERE campaign_id IS NOT NULL;

-- 4. The sandbox provider's memory, as a real provider keeps it: one row
-- per idempotency key, counting calls, and when the card was issued (its
-- code is derived from the key, never stored).
CREATE TABLE sandbox_cards (
    idempotency_key text PRIMARY KEY,
    brand_id        text NOT NULL,
    amount          bigint NOT NULL,
    currency        char(3) NOT NULL,
    calls           integer NOT NULL DEFAULT 1,
    issued_at       timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- 5. Consumer links and the sessions they open. Tokens are stored as
-- SHA-256 hashes only.
CREATE TABLE consumer_links (
    id           text PRIMARY KEY,
    workspace_id text NOT NULL REFERENCES workspaces (id),
    consumer_id  text NOT NULL REFERENCES consumers (id),
    token_hash   bytea NOT NULL UNIQUE,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consumer_links_consumer ON consumer_links (consumer_id, id);

CREATE TABLE consumer_sessions (
    token_hash bytea PRIMARY KEY,
    link_id    text NOT NULL REFERENCES consumer_links (id),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consumer_sessions_link ON consumer_sessions (link_id);

-- +goose Down
-- +goose StatementBegin
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM transactions WHERE redemption_id IS NOT NULL) THEN
        RAISE EXCEPTION 'redemptions have moved money: undoing this migration would lose it';
    END IF;
END $$;
-- +goose StatementEnd
DROP TABLE consumer_sessions, consumer_links, sandbox_cards, redemptions, workspace_brands, brands;
DROP INDEX wallets_campaign;
ALTER TABLE campaigns DROP COLUMN redeemed;
DROP INDEX transactions_redemption_step;
ALTER TABLE transactions DROP CONSTRAINT transactions_steps_belong_to_redemptions,
    ALTER COLUMN reference_id SET NOT NULL,
    DROP COLUMN redemption_id,
    DROP CONSTRAINT transactions_type_check,
    ADD CONSTRAINT transactions_type_check CHECK (type IN ('credit', 'debit', 'funding'));
DELETE FROM ledger_accounts a WHERE (kind = 'clearing' OR shard <> 0)
    AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.account_id = a.id);
DROP INDEX ledger_accounts_edges;
CREATE UNIQUE INDEX ledger_accounts_edges ON ledger_accounts (workspace_id, kind, currency) WHERE kind <> 'wallet';
ALTER TABLE ledger_accounts DROP COLUMN held, DROP COLUMN shard, DROP CONSTRAINT ledger_accounts_kind_check,
    ADD CONSTRAINT ledger_accounts_kind_check CHECK (kind IN ('partner', 'wallet', 'funding', 'settlement'));
