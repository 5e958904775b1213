-- The fleet's state (the customization information base). One row per thing, times in UTC.
-- Phase-2 columns (deployment state and priority, rollouts) are here already so that later versions add behaviour,
-- not a second shape of the same tables.

-- Bumped by every change of any agent's desired state; an agent's snapshot carries the revision it was made at.
CREATE TABLE fleet_revision (
    id        smallint PRIMARY KEY CHECK (id = 1),
    revision  bigint   NOT NULL
);
INSERT INTO fleet_revision VALUES (1, 0);

CREATE TABLE enrollment_tokens (
    hash        text        PRIMARY KEY,          -- SHA-256 of the token; the token itself is never stored
    agent       text        NOT NULL,
    labels      text[]      NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL,
    created_by  text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    used_from   text
);

CREATE TABLE agents (
    name              text        PRIMARY KEY,
    labels            text[]      NOT NULL DEFAULT '{}',   -- KEY=VALUE
    cert_serial       text        NOT NULL,
    enrolled_at       timestamptz NOT NULL,
    last_seen         timestamptz,
    connected_to      text,                                -- the orchestrator instance holding its stream, NULL when none
    address           text,
    version           text,
    desired_revision  bigint      NOT NULL DEFAULT 0,
    applied_revision  bigint      NOT NULL DEFAULT 0,
    ack_state         text        NOT NULL DEFAULT 'NEVER',
    ack_reason        text,
    report            bytea                                -- its last Report (orchestrator.proto)
);

CREATE TABLE agent_events (
    id     bigserial   PRIMARY KEY,
    agent  text        NOT NULL REFERENCES agents (name) ON DELETE CASCADE,
    at     timestamptz NOT NULL,
    text   text        NOT NULL
);
CREATE INDEX agent_events_by_agent ON agent_events (agent, id DESC);

CREATE TABLE artifacts (
    sha256       text        PRIMARY KEY,
    file_name    text        NOT NULL,
    size         bigint      NOT NULL,
    signature    bytea       NOT NULL,                     -- Ed25519 over the jar, by the module-signing key
    content      bytea       NOT NULL,
    uploaded_at  timestamptz NOT NULL,
    uploaded_by  text        NOT NULL
);

CREATE TABLE modules (
    name     text NOT NULL,
    version  text NOT NULL,
    sha256   text NOT NULL REFERENCES artifacts (sha256),
    PRIMARY KEY (name, version)
);

CREATE TABLE deployments (
    id              bigserial   PRIMARY KEY,
    module          text        NOT NULL,
    version         text        NOT NULL,
    target_kind     text        NOT NULL CHECK (target_kind IN ('ALL', 'LABEL', 'AGENT')),
    target_value    text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    created_by      text        NOT NULL,
    revision        bigint      NOT NULL,
    ended_at        timestamptz,                           -- revoked, or replaced by a later deployment of the module
    ended_revision  bigint,
    state           text        NOT NULL DEFAULT 'ACTIVE', -- phase 2: toggle active/inactive, deprecate
    priority        integer,                               -- phase 2: NULL keeps the descriptor's
    rollout         bigint,                                -- phase 2: the staged rollout it belongs to
    FOREIGN KEY (module, version) REFERENCES modules (name, version)
);
CREATE INDEX deployments_live ON deployments (module) WHERE ended_at IS NULL;
