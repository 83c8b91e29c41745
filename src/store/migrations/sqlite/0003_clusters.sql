-- 0003: entities (digital twins), clusters of them, the prompts and contexts a
-- cluster holds, and its conversations with their messages (spec 001).
--
-- members_count and prompts_count are counted from the link tables when read,
-- so they stay right whatever removes a link (a cluster, entity or prompt
-- deleted elsewhere: the foreign keys cascade). messages_count is a counter on
-- the conversation, moved in the same transaction that adds messages.
-- Lists order by (created_at, rowid): ids made in the same millisecond do not
-- sort by creation, rowids do.
CREATE TABLE entities (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    persona      TEXT NOT NULL DEFAULT '',
    model        TEXT,                 -- NULL = the configured default model
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX entities_org_created ON entities (org_id, created_at);

CREATE TABLE clusters (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX clusters_org_created ON clusters (org_id, created_at);

CREATE TABLE cluster_members (
    cluster_id   TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    entity_id    TEXT NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (cluster_id, entity_id)
);
CREATE INDEX cluster_members_entity ON cluster_members (entity_id);

CREATE TABLE cluster_prompts (
    cluster_id   TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    prompt_id    TEXT NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (cluster_id, prompt_id)
);
CREATE INDEX cluster_prompts_prompt ON cluster_prompts (prompt_id);

CREATE TABLE cluster_contexts (
    id           TEXT PRIMARY KEY,
    cluster_id   TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    name         TEXT NOT NULL DEFAULT '',
    content      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX cluster_contexts_cluster ON cluster_contexts (cluster_id, created_at);

CREATE TABLE conversations (
    id              TEXT PRIMARY KEY,
    cluster_id      TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    title           TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    messages_count  INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX conversations_cluster_created ON conversations (cluster_id, created_at);

-- seq orders messages (several can share a millisecond). entity_id is not a
-- foreign key: a reply keeps naming its entity (and entity_name) after the
-- entity is deleted.
CREATE TABLE messages (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT NOT NULL UNIQUE,
    conversation_id    TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role               TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content            TEXT NOT NULL DEFAULT '',
    user_id            TEXT,
    entity_id          TEXT,
    entity_name        TEXT,
    status             TEXT NOT NULL CHECK (status IN ('processing', 'completed', 'failed')),
    error              TEXT,
    model              TEXT,
    execution_id       TEXT,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    total_tokens       INTEGER NOT NULL DEFAULT 0,
    duration_ms        INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX messages_conversation ON messages (conversation_id, seq);
