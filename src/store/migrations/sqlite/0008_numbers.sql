-- 0008: integer ids for spec 002 (users, workspaces, data sources, prompts),
-- and the time of each user's last history clear.
--
-- Numbers are per organization (each starts at 1): an organization's numbers
-- say nothing about how much any other organization holds, and a lookup is
-- always (org_id, num), so another organization's number is simply not found.
-- The UUID stays the row's key; the number is a second name for it.
--
-- org_counters holds the last number given per (organization, kind). A number
-- is never given twice, even after its row is deleted (max(num) + 1 would
-- hand a deleted row's number to the next new row, and a client holding the
-- old one would reach something else). The triggers below take the next
-- number inside the inserting statement's own transaction, and every write
-- goes through the one writer connection (BEGIN IMMEDIATE), so two requests
-- creating at once get different numbers.
CREATE TABLE org_counters (
    org_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    kind    TEXT NOT NULL,
    last    INTEGER NOT NULL,
    PRIMARY KEY (org_id, kind)
) WITHOUT ROWID;

ALTER TABLE users ADD COLUMN num INTEGER;
ALTER TABLE workspaces ADD COLUMN num INTEGER;
ALTER TABLE data_sources ADD COLUMN num INTEGER;
ALTER TABLE prompts ADD COLUMN num INTEGER;

-- Existing rows are numbered in creation order (ties by insertion order).
UPDATE users SET num = r.n
  FROM (SELECT rowid AS rid, row_number() OVER (PARTITION BY org_id ORDER BY created_at, rowid) AS n FROM users) AS r
 WHERE users.rowid = r.rid;
UPDATE workspaces SET num = r.n
  FROM (SELECT rowid AS rid, row_number() OVER (PARTITION BY org_id ORDER BY created_at, rowid) AS n
          FROM workspaces) AS r
 WHERE workspaces.rowid = r.rid;
UPDATE data_sources SET num = r.n
  FROM (SELECT rowid AS rid, row_number() OVER (PARTITION BY org_id ORDER BY created_at, rowid) AS n
          FROM data_sources) AS r
 WHERE data_sources.rowid = r.rid;
UPDATE prompts SET num = r.n
  FROM (SELECT rowid AS rid, row_number() OVER (PARTITION BY org_id ORDER BY created_at, rowid) AS n FROM prompts) AS r
 WHERE prompts.rowid = r.rid;

INSERT INTO org_counters (org_id, kind, last) SELECT org_id, 'user', max(num) FROM users GROUP BY org_id;
INSERT INTO org_counters (org_id, kind, last) SELECT org_id, 'workspace', max(num) FROM workspaces GROUP BY org_id;
INSERT INTO org_counters (org_id, kind, last) SELECT org_id, 'data_source', max(num) FROM data_sources GROUP BY org_id;
INSERT INTO org_counters (org_id, kind, last) SELECT org_id, 'prompt', max(num) FROM prompts GROUP BY org_id;

-- The lookup of a number, and the guarantee that it names one row.
CREATE UNIQUE INDEX users_org_num ON users (org_id, num);
CREATE UNIQUE INDEX workspaces_org_num ON workspaces (org_id, num);
CREATE UNIQUE INDEX data_sources_org_num ON data_sources (org_id, num);
CREATE UNIQUE INDEX prompts_org_num ON prompts (org_id, num);

-- New rows: the next number of their organization. (SQLite cannot change
-- NEW in a BEFORE trigger, so the row is numbered right after its insert,
-- in the same statement.)
CREATE TRIGGER users_num_ai AFTER INSERT ON users WHEN new.num IS NULL BEGIN
    INSERT OR IGNORE INTO org_counters (org_id, kind, last) VALUES (new.org_id, 'user', 0);
    UPDATE org_counters SET last = last + 1 WHERE org_id = new.org_id AND kind = 'user';
    UPDATE users SET num = (SELECT last FROM org_counters WHERE org_id = new.org_id AND kind = 'user')
     WHERE rowid = new.rowid;
END;
CREATE TRIGGER workspaces_num_ai AFTER INSERT ON workspaces WHEN new.num IS NULL BEGIN
    INSERT OR IGNORE INTO org_counters (org_id, kind, last) VALUES (new.org_id, 'workspace', 0);
    UPDATE org_counters SET last = last + 1 WHERE org_id = new.org_id AND kind = 'workspace';
    UPDATE workspaces SET num = (SELECT last FROM org_counters WHERE org_id = new.org_id AND kind = 'workspace')
     WHERE rowid = new.rowid;
END;
CREATE TRIGGER data_sources_num_ai AFTER INSERT ON data_sources WHEN new.num IS NULL BEGIN
    INSERT OR IGNORE INTO org_counters (org_id, kind, last) VALUES (new.org_id, 'data_source', 0);
    UPDATE org_counters SET last = last + 1 WHERE org_id = new.org_id AND kind = 'data_source';
    UPDATE data_sources SET num = (SELECT last FROM org_counters WHERE org_id = new.org_id AND kind = 'data_source')
     WHERE rowid = new.rowid;
END;
CREATE TRIGGER prompts_num_ai AFTER INSERT ON prompts WHEN new.num IS NULL BEGIN
    INSERT OR IGNORE INTO org_counters (org_id, kind, last) VALUES (new.org_id, 'prompt', 0);
    UPDATE org_counters SET last = last + 1 WHERE org_id = new.org_id AND kind = 'prompt';
    UPDATE prompts SET num = (SELECT last FROM org_counters WHERE org_id = new.org_id AND kind = 'prompt')
     WHERE rowid = new.rowid;
END;

-- A user's history shows only what happened at or after their last clear
-- (milliseconds since the epoch; NULL = never cleared).
ALTER TABLE users ADD COLUMN history_cleared_at INTEGER;
