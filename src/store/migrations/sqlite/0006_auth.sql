-- 0006: server settings (the HS256 token secret lives here, so the CLI and
-- the server sign and verify with the same one) and per-key rate limits.
CREATE TABLE settings (
    name        TEXT PRIMARY KEY,
    value       BLOB NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

ALTER TABLE api_keys ADD COLUMN rate_limit_per_minute INTEGER;  -- NULL: the server default
CREATE INDEX users_org_email ON users (org_id, email);
