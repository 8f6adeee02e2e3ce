-- ucm schema, version 8: provenance. Per row of the merged table: the side each of the 22
-- values came from (bit i set: field i's value is the external one, in the order of the
-- field list) and the run that last changed the row, written by the run in the same
-- statements as the row. Rows written before version 8 have sides 0 and no run.
ALTER TABLE contacts ADD COLUMN sides INTEGER NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN changed_by_run INTEGER;
