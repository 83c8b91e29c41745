-- 0002: executions (every run of a prompt or a chat request) and comments on them.
CREATE TABLE executions (
    id                 TEXT PRIMARY KEY,
    org_id             TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id            TEXT NOT NULL,
    api_key_id         TEXT,
    prompt_id          TEXT,              -- NULL for raw chat requests (OpenAI gateway)
    version_id         TEXT,
    version_number     INTEGER,
    source             TEXT NOT NULL,     -- 'prompt' | 'chat' | 'v1'
    rendered_prompt    TEXT NOT NULL DEFAULT '',
    messages           TEXT,              -- JSON array sent to the model
    variables          TEXT NOT NULL DEFAULT '{}',
    metadata           TEXT NOT NULL DEFAULT '{}',
    model              TEXT NOT NULL,
    temperature        REAL,
    max_tokens         INTEGER,
    stream             INTEGER NOT NULL DEFAULT 0,
    status             TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    output             TEXT NOT NULL DEFAULT '',
    error              TEXT,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    total_tokens       INTEGER NOT NULL DEFAULT 0,
    duration_ms        INTEGER NOT NULL DEFAULT 0,
    attempts           INTEGER NOT NULL DEFAULT 0,
    likes_count        INTEGER NOT NULL DEFAULT 0,
    saves_count        INTEGER NOT NULL DEFAULT 0,
    comments_count     INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    finished_at        INTEGER,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX executions_org_created ON executions (org_id, created_at);
CREATE INDEX executions_prompt_created ON executions (prompt_id, created_at);

CREATE TABLE comments (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL,
    execution_id  TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX comments_execution ON comments (execution_id, created_at);
