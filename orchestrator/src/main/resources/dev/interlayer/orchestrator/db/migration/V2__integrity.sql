-- Each agent's last answer to an integrity challenge (orchestrator.proto, Challenge and Proof).
ALTER TABLE agents
    ADD COLUMN integrity         text        NOT NULL DEFAULT 'UNCHECKED'
        CHECK (integrity IN ('UNCHECKED', 'VERIFIED', 'MISMATCH', 'NO_ANSWER')),
    ADD COLUMN integrity_reason  text,
    ADD COLUMN integrity_at      timestamptz;
