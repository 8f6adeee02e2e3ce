-- ucm schema, version 3 (PostgreSQL, the same as SQLite): the live state of each merged contact, kept by `ucm serve`: its
-- status (registration, call state, presence, a note) and its routing profile. Keyed by the
-- contact's identity ("dir:" || directory_id, or "ext:" || match_key for external-only
-- contacts), so it survives runs that rewrite the contacts table and restarts of the service.
-- Each part carries the version of its last change (a hybrid logical clock: milliseconds,
-- counter, node name, sortable as text); a change older than the stored one is ignored.
CREATE TABLE contact_state (
    contact TEXT PRIMARY KEY NOT NULL,
    registered BIGINT NOT NULL DEFAULT 0,
    call_state TEXT NOT NULL DEFAULT 'idle' CHECK (call_state IN ('idle', 'ringing', 'busy')),
    presence TEXT NOT NULL DEFAULT 'offline' CHECK (presence IN ('available', 'away', 'dnd', 'offline')),
    note TEXT,
    status_version TEXT,
    profile TEXT,
    profile_version TEXT,
    updated_at TEXT NOT NULL
);
