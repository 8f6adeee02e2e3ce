-- ucm schema, version 12: on PostgreSQL the name and e-mail search indexes gain the row id
-- after the key, so that a range read "by key, then id" needs no sort. SQLite's indexes
-- already end with the rowid: nothing changes here (the statement below keeps the versions
-- of both backends in step).
SELECT 1;
