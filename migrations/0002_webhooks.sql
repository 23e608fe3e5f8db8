-- +goose Up
-- Webhook endpoints, one delivery per (event, endpoint) and every attempt
-- made for it. Deliveries are written in the same transaction as their
-- event (an outbox), so a committed event is never left undelivered.

CREATE TABLE webhook_endpoints (
    id                         text PRIMARY KEY,
    workspace_id               text NOT NULL REFERENCES workspaces (id),
    url                        text NOT NULL,
    events                     text[] NOT NULL,
    enabled                    boolean NOT NULL DEFAULT true,
    description                text,
    secret                     text NOT NULL,
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    disabled_reason            text,
    deleted_at                 timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_workspace ON webhook_endpoints (workspace_id, id) WHERE deleted_at IS NULL;

CREATE TABLE webhook_deliveries (
    id              text PRIMARY KEY,
    workspace_id    text NOT NULL REFERENCES workspaces (id),
    event_id        text NOT NULL REFERENCES events (id),
    endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

CREATE TABLE webhook_attempts (
    id               bigserial PRIMARY KEY,
    delivery_id      text NOT NULL REFERENCES webhook_deliveries (id),
    attempt          integer NOT NULL,
    status_code      integer,
    latency_ms       integer NOT NULL,
    error            text,
    response_excerpt text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (delivery_id, attempt)
);

-- +goose Down
DROP TABLE webhook_attempts, webhook_deliveries, webhook_endpoints;
