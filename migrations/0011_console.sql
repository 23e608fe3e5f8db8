-- +goose Up
-- The partner console (/console): a partner's team members with roles,
-- the invitations and password resets that let them in, their sessions,
-- and the audit log of every write they make. Tokens (invites, resets,
-- sessions) are stored as SHA-256 hashes only; passwords as argon2id.

-- 1. A member belongs to one workspace and signs in with an email address
-- unique among the live members of every workspace (sign-in asks for no
-- workspace). A revoked member keeps its row: the audit log names it.
CREATE TABLE console_members (
    id            text PRIMARY KEY,
    workspace_id  text NOT NULL REFERENCES workspaces (id),
    email         text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'technology', 'finance')),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE UNIQUE INDEX console_members_email ON console_members (lower(email)) WHERE revoked_at IS NULL;
CREATE INDEX console_members_workspace ON console_members (workspace_id, created_at);

-- 2. An invitation makes a member; with member_id set it is a password
-- reset of that member instead. email NULL: whoever holds the link (a new
-- workspace's first admin). Used once, within its expiry.
CREATE TABLE console_invites (
    id           text PRIMARY KEY,
    workspace_id text NOT NULL REFERENCES workspaces (id),
    token_hash   bytea NOT NULL UNIQUE,
    role         text NOT NULL CHECK (role IN ('admin', 'technology', 'finance')),
    email        text,
    member_id    text REFERENCES console_members (id),
    invited_by   text REFERENCES console_members (id),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_invites_workspace ON console_invites (workspace_id, created_at);

-- 3. Sessions live server-side: sign-out, a member's revocation or a
-- password reset deletes them; idle and absolute timeouts end them.
CREATE TABLE console_sessions (
    token_hash   bytea PRIMARY KEY,
    member_id    text NOT NULL REFERENCES console_members (id),
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_sessions_member ON console_sessions (member_id);

-- 4. Who did what, when: every write a member makes in the console.
CREATE TABLE console_audit (
    id           bigserial PRIMARY KEY,
    workspace_id text NOT NULL REFERENCES workspaces (id),
    member_id    text NOT NULL REFERENCES console_members (id),
    action       text NOT NULL,
    object_id    text,
    detail       text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_audit_workspace ON console_audit (workspace_id, id);

-- +goose Down
DROP TABLE console_audit;
DROP TABLE console_sessions;
DROP TABLE console_invites;
DROP TABLE console_members;
