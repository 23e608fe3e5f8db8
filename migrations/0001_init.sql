-- +goose Up
-- The whole first schema: partners (workspaces) and their keys, consumers,
-- campaigns, wallets, the double-entry ledger, transactions and events.
-- Money rules live here as constraints too, so a bug in Go cannot break them.

CREATE TABLE workspaces (
    id             text PRIMARY KEY,
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    signing_secret text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    workspace_id text NOT NULL REFERENCES workspaces (id),
    name         text NOT NULL,
    scope        text NOT NULL CHECK (scope IN ('read', 'write')),
    prefix       text NOT NULL,
    secret_hash  bytea NOT NULL UNIQUE,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id, id);

CREATE TABLE consumers (
    id           text PRIMARY KEY,
    workspace_id text NOT NULL REFERENCES workspaces (id),
    external_id  text NOT NULL,
    email        text,
    name         text,
    metadata     jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, external_id)
);
CREATE INDEX consumers_workspace ON consumers (workspace_id, id);

-- A ledger account holds one balance in one currency. Partner balances and
-- wallets may never go negative; the edges of the ledger (money entering
-- from outside, money leaving to gift card providers) may.
CREATE TABLE ledger_accounts (
    id           bigserial PRIMARY KEY,
    workspace_id text NOT NULL REFERENCES workspaces (id),
    kind         text NOT NULL CHECK (kind IN ('partner', 'wallet', 'funding', 'settlement')),
    currency     char(3) NOT NULL,
    balance      bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (kind IN ('funding', 'settlement') OR balance >= 0)
);
CREATE UNIQUE INDEX ledger_accounts_edges ON ledger_accounts (workspace_id, kind, currency) WHERE kind <> 'wallet';

CREATE TABLE campaigns (
    id             text PRIMARY KEY,
    workspace_id   text NOT NULL REFERENCES workspaces (id),
    name           text NOT NULL,
    currency       char(3) NOT NULL,
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'ended')),
    budget         bigint CHECK (budget > 0),
    credited       bigint NOT NULL DEFAULT 0 CHECK (credited >= 0),
    debited        bigint NOT NULL DEFAULT 0 CHECK (debited >= 0),
    starts_at      timestamptz,
    ends_at        timestamptz,
    allowed_brands text[] NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (budget IS NULL OR credited - debited <= budget),
    CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
);
CREATE INDEX campaigns_workspace ON campaigns (workspace_id, id);

CREATE TABLE wallets (
    id           text PRIMARY KEY,
    workspace_id text NOT NULL REFERENCES workspaces (id),
    consumer_id  text NOT NULL REFERENCES consumers (id),
    type         text NOT NULL CHECK (type IN ('standard', 'campaign')),
    currency     char(3) NOT NULL,
    campaign_id  text REFERENCES campaigns (id),
    account_id   bigint NOT NULL UNIQUE REFERENCES ledger_accounts (id),
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((type = 'campaign') = (campaign_id IS NOT NULL))
);
CREATE UNIQUE INDEX wallets_one_standard ON wallets (consumer_id, currency) WHERE type = 'standard';
CREATE UNIQUE INDEX wallets_one_per_campaign ON wallets (consumer_id, campaign_id) WHERE type = 'campaign';
CREATE INDEX wallets_consumer ON wallets (consumer_id, id);

-- A transaction is the partner's request to move money. lane_account_id is
-- the partner balance every posting of it goes through: the ledger applies a
-- lane's pending transactions in groups under one lock of that row.
CREATE TABLE transactions (
    id              text PRIMARY KEY,
    workspace_id    text NOT NULL REFERENCES workspaces (id),
    reference_id    text NOT NULL,
    type            text NOT NULL CHECK (type IN ('credit', 'debit', 'funding')),
    wallet_id       text REFERENCES wallets (id),
    lane_account_id bigint NOT NULL REFERENCES ledger_accounts (id),
    amount          bigint NOT NULL CHECK (amount > 0),
    currency        char(3) NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'completed', 'failed')),
    failure_reason  text,
    batch_id        text,
    description     text,
    metadata        jsonb,
    fingerprint     bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    UNIQUE (workspace_id, reference_id),
    CHECK ((type = 'funding') = (wallet_id IS NULL)),
    CHECK ((status = 'failed') = (failure_reason IS NOT NULL))
);
-- Finding pending work reads only pending rows, never history.
CREATE INDEX transactions_pending ON transactions (lane_account_id, created_at, id) WHERE status = 'pending';
CREATE INDEX transactions_workspace ON transactions (workspace_id, id);
CREATE INDEX transactions_wallet ON transactions (wallet_id, id);

CREATE TABLE ledger_entries (
    id             bigserial PRIMARY KEY,
    transaction_id text NOT NULL REFERENCES transactions (id),
    account_id     bigint NOT NULL REFERENCES ledger_accounts (id),
    amount         bigint NOT NULL CHECK (amount <> 0),
    balance_after  bigint NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, id);
CREATE INDEX ledger_entries_transaction ON ledger_entries (transaction_id);

-- Events are written in the same database transaction as the change they
-- report; webhooks and GET /v1/events read them from here.
CREATE TABLE events (
    id           text PRIMARY KEY,
    workspace_id text NOT NULL REFERENCES workspaces (id),
    type         text NOT NULL,
    data         jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_workspace ON events (workspace_id, id);

-- +goose Down
DROP TABLE events, ledger_entries, transactions, wallets, campaigns, ledger_accounts, consumers, api_keys, workspaces;
