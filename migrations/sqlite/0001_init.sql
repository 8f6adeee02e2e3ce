-- ucm schema, version 1: the directory, the merged contacts table and the run history.

-- The internal directory, replaced as a whole by `ucm directory load` or a pipeline's
-- directory CSV.
CREATE TABLE directory (
    id TEXT PRIMARY KEY NOT NULL,
    extension TEXT,
    first_name TEXT,
    last_name TEXT,
    mobile_number TEXT,
    fax_number TEXT,
    home_number TEXT,
    e_mail TEXT,
    site TEXT,
    department TEXT,
    office TEXT,
    owner TEXT,
    source TEXT,
    user_1 TEXT,
    user_2 TEXT,
    user_3 TEXT,
    user_4 TEXT,
    user_5 TEXT,
    user_6 TEXT,
    user_7 TEXT,
    user_8 TEXT,
    user_9 TEXT,
    user_10 TEXT
);

-- The merged table: one row per directory entry, plus one per external contact matching no
-- directory entry.
CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL CHECK (origin IN ('directory', 'external', 'merged')),
    directory_id TEXT,
    match_key TEXT,
    extension TEXT,
    first_name TEXT,
    last_name TEXT,
    mobile_number TEXT,
    fax_number TEXT,
    home_number TEXT,
    e_mail TEXT,
    site TEXT,
    department TEXT,
    office TEXT,
    owner TEXT,
    source TEXT,
    user_1 TEXT,
    user_2 TEXT,
    user_3 TEXT,
    user_4 TEXT,
    user_5 TEXT,
    user_6 TEXT,
    user_7 TEXT,
    user_8 TEXT,
    user_9 TEXT,
    user_10 TEXT,
    -- xxh3 of origin, directory_id, match_key and the 22 fields: equal means unchanged.
    content_hash INTEGER NOT NULL,
    -- Changed only when the row's content changes (RFC 3339, UTC).
    updated_at TEXT NOT NULL,
    CHECK ((origin = 'external') = (directory_id IS NULL)),
    CHECK (origin = 'directory' OR match_key IS NOT NULL)
);
CREATE UNIQUE INDEX contacts_by_directory_id ON contacts (directory_id) WHERE directory_id IS NOT NULL;
CREATE UNIQUE INDEX contacts_by_external_key ON contacts (match_key) WHERE directory_id IS NULL;

-- One row per run, whatever its outcome.
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    pipeline TEXT NOT NULL,
    command TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('succeeded', 'failed', 'refused', 'dry_run')),
    source TEXT,
    source_sha256 TEXT,
    contacts_read INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    inserted INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    -- The run report as `--format json` prints it (without the dry-run change list).
    report TEXT NOT NULL
);
CREATE INDEX runs_by_pipeline ON runs (pipeline, id);
