-- 0001: organizations, users, API keys, prompts with versions, reactions.
CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    role        TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    created_at  INTEGER NOT NULL,
    UNIQUE (org_id, email)
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    prefix      TEXT NOT NULL UNIQUE,
    hash        BLOB NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE prompts (
    id                    TEXT PRIMARY KEY,
    org_id                TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id               TEXT NOT NULL,
    name                  TEXT NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    content               TEXT NOT NULL,
    status                TEXT NOT NULL DEFAULT 'draft',
    current_version_id    TEXT,
    published_version_id  TEXT,
    versions_count        INTEGER NOT NULL DEFAULT 1,
    likes_count           INTEGER NOT NULL DEFAULT 0,
    saves_count           INTEGER NOT NULL DEFAULT 0,
    followers_count       INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);
CREATE INDEX prompts_org_created ON prompts (org_id, created_at);
CREATE INDEX prompts_org_updated ON prompts (org_id, updated_at);

CREATE TABLE prompt_versions (
    id            TEXT PRIMARY KEY,
    prompt_id     TEXT NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
    org_id        TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    number        INTEGER NOT NULL,
    content       TEXT NOT NULL,
    published_at  INTEGER,
    created_at    INTEGER NOT NULL,
    UNIQUE (prompt_id, number)
);

-- Full-text index over the prompt's words; kept in step by triggers.
CREATE VIRTUAL TABLE prompts_fts USING fts5 (
    name, description, content,
    content = 'prompts', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
CREATE TRIGGER prompts_fts_ai AFTER INSERT ON prompts BEGIN
    INSERT INTO prompts_fts (rowid, name, description, content)
    VALUES (new.rowid, new.name, new.description, new.content);
END;
CREATE TRIGGER prompts_fts_ad AFTER DELETE ON prompts BEGIN
    INSERT INTO prompts_fts (prompts_fts, rowid, name, description, content)
    VALUES ('delete', old.rowid, old.name, old.description, old.content);
END;
CREATE TRIGGER prompts_fts_au AFTER UPDATE OF name, description, content ON prompts BEGIN
    INSERT INTO prompts_fts (prompts_fts, rowid, name, description, content)
    VALUES ('delete', old.rowid, old.name, old.description, old.content);
    INSERT INTO prompts_fts (rowid, name, description, content)
    VALUES (new.rowid, new.name, new.description, new.content);
END;

-- One row per (user, target, kind): likes, saves, follows. Counters live on the target.
CREATE TABLE reactions (
    user_id      TEXT NOT NULL,
    target_type  TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    org_id       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, target_type, target_id, kind)
) WITHOUT ROWID;
CREATE INDEX reactions_target ON reactions (target_type, target_id);
