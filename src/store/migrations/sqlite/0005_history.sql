-- 0005: prompt history (spec 002) and the organization resources its filters
-- name: workspaces, data sources (users exist since 0001). Prompts gain a
-- workspace, tags, their data sources, and a denormalised copy of their latest
-- execution kept right by triggers on executions, so the history query reads
-- one row per prompt from an index instead of grouping executions.

CREATE TABLE workspaces (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (org_id, name)
);
CREATE INDEX workspaces_org_created ON workspaces (org_id, created_at);

-- A data source belongs to an organization and optionally to one of its
-- workspaces (deleting the workspace detaches it).
CREATE TABLE data_sources (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    workspace_id  TEXT REFERENCES workspaces(id) ON DELETE SET NULL,
    name          TEXT NOT NULL,
    type          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (org_id, name)
);
CREATE INDEX data_sources_org_created ON data_sources (org_id, created_at);
CREATE INDEX data_sources_workspace ON data_sources (workspace_id);

CREATE TABLE prompt_data_sources (
    prompt_id       TEXT NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
    data_source_id  TEXT NOT NULL REFERENCES data_sources(id) ON DELETE CASCADE,
    PRIMARY KEY (prompt_id, data_source_id)
) WITHOUT ROWID;
-- the data_source_id filter: prompts of one data source
CREATE INDEX prompt_data_sources_ds ON prompt_data_sources (data_source_id, prompt_id);

-- Users (0001) become a managed resource: they get an update time, and their
-- keys are found by user (deleting a user deletes their keys).
ALTER TABLE users ADD COLUMN updated_at INTEGER;
CREATE INDEX api_keys_user ON api_keys (user_id);

-- Prompts: workspace, tags (a JSON array of strings) and the latest execution.
-- last_status is the latest execution's status, or 'draft' when it never ran;
-- last_executed_at is that execution's created_at (NULL when never run).
ALTER TABLE prompts ADD COLUMN workspace_id TEXT REFERENCES workspaces(id) ON DELETE SET NULL;
ALTER TABLE prompts ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE prompts ADD COLUMN last_execution_id TEXT;
ALTER TABLE prompts ADD COLUMN last_status TEXT NOT NULL DEFAULT 'draft';
ALTER TABLE prompts ADD COLUMN last_duration_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE prompts ADD COLUMN last_executed_at INTEGER;

-- The history query always filters on org and user (the caller by default)
-- and sorts by the row's time: the last run, or creation for a draft. These
-- expression indexes serve each sort order straight from the index
-- (WHERE org_id = ? AND user_id = ? ORDER BY <key> LIMIT n), with status as
-- a further equality column for the status filter.
CREATE INDEX prompts_hist_user_time ON prompts (org_id, user_id, coalesce(last_executed_at, created_at));
CREATE INDEX prompts_hist_user_status ON prompts (org_id, user_id, last_status, coalesce(last_executed_at, created_at));
-- (the time key last: a time_period filter is checked in the index entries while the page is read in
-- duration order, and it breaks ties between equal durations)
CREATE INDEX prompts_hist_user_duration ON prompts (org_id, user_id, last_duration_ms, coalesce(last_executed_at, created_at));
-- an admin's org-wide view (user_id=all) and the v1 prompt list
CREATE INDEX prompts_hist_org_time ON prompts (org_id, coalesce(last_executed_at, created_at));
-- the workspace filter and ON DELETE SET NULL; no time key, so a new execution does not move it
CREATE INDEX prompts_workspace ON prompts (workspace_id);
-- Every index holding a latest-execution column moves when an execution starts or ends (the triggers
-- below update the prompt row): bench/README.md says what that costs bulk inserts.

-- Clearing a user's history deletes their executions: find them by user.
-- (0004 creates the same index for sessions; IF NOT EXISTS keeps one.)
CREATE INDEX IF NOT EXISTS executions_user_created ON executions (org_id, user_id, created_at);

-- Keep the latest-execution columns right. "Latest" is the newest created_at;
-- on a tie the later insert wins.
CREATE TRIGGER executions_hist_ai AFTER INSERT ON executions
WHEN new.prompt_id IS NOT NULL BEGIN
    UPDATE prompts
       SET last_execution_id = new.id, last_status = new.status, last_duration_ms = new.duration_ms,
           last_executed_at = new.created_at
     WHERE id = new.prompt_id AND (last_executed_at IS NULL OR last_executed_at <= new.created_at);
END;

CREATE TRIGGER executions_hist_au AFTER UPDATE OF status, duration_ms ON executions
WHEN new.prompt_id IS NOT NULL BEGIN
    UPDATE prompts SET last_status = new.status, last_duration_ms = new.duration_ms
     WHERE id = new.prompt_id AND last_execution_id = new.id;
END;

-- When the latest execution goes, the one before it (or none: draft) takes over.
CREATE TRIGGER executions_hist_ad AFTER DELETE ON executions
WHEN old.prompt_id IS NOT NULL BEGIN
    UPDATE prompts
       SET (last_execution_id, last_status, last_duration_ms, last_executed_at) =
           (SELECT x.id, coalesce(x.status, 'draft'), coalesce(x.duration_ms, 0), x.created_at
              FROM (SELECT 1) AS one
              LEFT JOIN (SELECT id, status, duration_ms, created_at FROM executions
                          WHERE prompt_id = old.prompt_id ORDER BY created_at DESC, rowid DESC LIMIT 1) AS x ON 1)
     WHERE id = old.prompt_id AND last_execution_id = old.id;
END;

-- Existing databases: fill the new columns from the executions already there.
UPDATE prompts
   SET (last_execution_id, last_status, last_duration_ms, last_executed_at) =
       (SELECT e.id, e.status, e.duration_ms, e.created_at FROM executions e
         WHERE e.prompt_id = prompts.id ORDER BY e.created_at DESC, e.rowid DESC LIMIT 1)
 WHERE EXISTS (SELECT 1 FROM executions e WHERE e.prompt_id = prompts.id);
