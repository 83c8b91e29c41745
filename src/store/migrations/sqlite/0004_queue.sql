-- 0004: the durable queue of async executions (leases), batches, earlier
-- attempts of retried executions, idempotency keys, and raw-text prompts.
ALTER TABLE executions ADD COLUMN async INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN batch_id TEXT;
ALTER TABLE executions ADD COLUMN lease_owner TEXT;
ALTER TABLE executions ADD COLUMN lease_expires_at INTEGER;
ALTER TABLE executions ADD COLUMN started_at INTEGER;
ALTER TABLE executions ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;

-- What the dispatcher scans: only unfinished async rows are in this index.
CREATE INDEX executions_queue ON executions (status, created_at)
    WHERE async = 1 AND status IN ('queued', 'processing');
CREATE INDEX executions_batch ON executions (batch_id, status) WHERE batch_id IS NOT NULL;
CREATE INDEX executions_user_created ON executions (org_id, user_id, created_at);

CREATE TABLE batches (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    total       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

-- An execution's earlier attempts, kept when it is retried.
CREATE TABLE execution_attempts (
    execution_id       TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    number             INTEGER NOT NULL,
    status             TEXT NOT NULL,
    output             TEXT NOT NULL DEFAULT '',
    error              TEXT,
    model              TEXT NOT NULL,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    total_tokens       INTEGER NOT NULL DEFAULT 0,
    duration_ms        INTEGER NOT NULL DEFAULT 0,
    started_at         INTEGER,
    finished_at        INTEGER,
    PRIMARY KEY (execution_id, number)
) WITHOUT ROWID;

CREATE TABLE idempotency_keys (
    org_id        TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    request_hash  BLOB NOT NULL,
    status_code   INTEGER NOT NULL DEFAULT 0,   -- 0 while the first request is still running
    response      TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (org_id, idem_key)
) WITHOUT ROWID;

-- A raw prompt text becomes a prompt once per user: found again by its hash.
ALTER TABLE prompts ADD COLUMN raw_hash TEXT;
CREATE UNIQUE INDEX prompts_raw ON prompts (org_id, user_id, raw_hash) WHERE raw_hash IS NOT NULL;
