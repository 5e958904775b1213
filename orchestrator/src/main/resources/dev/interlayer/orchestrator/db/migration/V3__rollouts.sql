-- Staged rollouts (docs/orchestrator.md, "Staged rollouts"). The state machine is persisted here, so that a restarted
-- orchestrator, or another replica taking the lead, continues each rollout from its phase. Every step (a phase change
-- with the deployments it adds or ends) is one transaction.
CREATE TABLE rollouts (
    id              bigserial   PRIMARY KEY,
    module          text        NOT NULL,
    version         text        NOT NULL,
    previous        text[]      NOT NULL DEFAULT '{}',     -- versions of the module deployed when it started
    canary_kind     text        NOT NULL CHECK (canary_kind IN ('LABEL', 'AGENT')),
    canary_value    text        NOT NULL,
    target_kind     text        CHECK (target_kind IN ('ALL', 'LABEL', 'AGENT')),  -- NULL: the module's live deployments
    target_value    text,
    max_faults      bigint      NOT NULL,
    bake_seconds    integer     NOT NULL,
    phase           text        NOT NULL CHECK (phase IN ('CANARY', 'BAKING', 'EXPANDING', 'DONE', 'ROLLED_BACK', 'ABORTED')),
    reason          text,                                  -- why it waits, was rolled back or aborted
    step_revision   bigint      NOT NULL,                  -- the fleet revision of its last step
    step_at         timestamptz NOT NULL,                  -- when it was made
    bake_until      timestamptz,
    replaced        bigint[]    NOT NULL DEFAULT '{}',     -- deployments it ended; a rollback makes them live again
    applied         integer     NOT NULL DEFAULT 0,
    total           integer     NOT NULL DEFAULT 0,
    faults          bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    created_by      text        NOT NULL,
    updated_at      timestamptz NOT NULL,
    FOREIGN KEY (module, version) REFERENCES modules (name, version)
);
-- at most one rollout of a module runs at a time
CREATE UNIQUE INDEX rollouts_running ON rollouts (module) WHERE phase IN ('CANARY', 'BAKING', 'EXPANDING');
ALTER TABLE deployments ADD FOREIGN KEY (rollout) REFERENCES rollouts (id);

-- The keys of the fleet, as the first orchestrator on this database held them: every replica must hold the same CA and
-- module-signing key (copies of the first one's data folder files), or it refuses to start.
CREATE TABLE fleet_keys (
    id           smallint    PRIMARY KEY CHECK (id = 1),
    ca_sha256    text        NOT NULL,                     -- SHA-256 of the CA certificate (DER)
    signing_key  text        NOT NULL,                     -- the module-signing public key (PEM)
    first_by     text        NOT NULL,                     -- the orchestrator instance that stored them
    stored_at    timestamptz NOT NULL
);
