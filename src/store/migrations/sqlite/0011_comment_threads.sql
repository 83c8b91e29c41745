-- 0011: comments on prompts as well as on executions, replies, and the
-- reactions (like, save, follow) on a comment with their counters.
--
-- A comment is on exactly one target: an execution (execution_id set, as
-- before) or a prompt itself (prompt_id set, execution_id NULL). parent_id
-- names the comment it replies to, on the same target; deleting a comment
-- takes its replies with it. The table is rebuilt because execution_id
-- becomes nullable (SQLite cannot drop a NOT NULL in place); rows keep their
-- ids and their insertion order (rowid), which lists use as the tiebreaker.
CREATE TABLE comment_threads (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL,
    execution_id     TEXT REFERENCES executions(id) ON DELETE CASCADE,
    prompt_id        TEXT REFERENCES prompts(id) ON DELETE CASCADE,
    parent_id        TEXT REFERENCES comment_threads(id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL,
    body             TEXT NOT NULL,
    likes_count      INTEGER NOT NULL DEFAULT 0,
    saves_count      INTEGER NOT NULL DEFAULT 0,
    followers_count  INTEGER NOT NULL DEFAULT 0,
    replies_count    INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    CHECK ((execution_id IS NULL) <> (prompt_id IS NULL))
);
INSERT INTO comment_threads (rowid, id, org_id, execution_id, user_id, body, created_at, updated_at)
    SELECT rowid, id, org_id, execution_id, user_id, body, created_at, updated_at FROM comments;
DROP TABLE comments;
ALTER TABLE comment_threads RENAME TO comments;
CREATE INDEX comments_execution ON comments (execution_id, created_at) WHERE execution_id IS NOT NULL;
CREATE INDEX comments_prompt ON comments (prompt_id, created_at) WHERE prompt_id IS NOT NULL;
CREATE INDEX comments_parent ON comments (parent_id) WHERE parent_id IS NOT NULL;
