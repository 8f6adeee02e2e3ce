-- ucm schema, version 10: the number index of caller-ID lookup (src/numbers.rs,
-- src/load/numbers.rs). One row per key of a contact's numbers: its extension as written,
-- its mobile, home and fax numbers in E.164, with the rank that orders contacts sharing a
-- number (field, then directory before external). Written by every run in its transaction,
-- with the rows it inserts, updates and deletes; a lookup is one range of
-- contact_numbers_by_number. No foreign key: the run keeps both tables in step.
CREATE TABLE contact_numbers (
    contact_id INTEGER NOT NULL,
    number TEXT NOT NULL,
    rank INTEGER NOT NULL
);
CREATE INDEX contact_numbers_by_number ON contact_numbers (number, rank, contact_id);
CREATE INDEX contact_numbers_by_contact ON contact_numbers (contact_id);
-- The default region the index was built with ('' for none). No row: not built yet. A run
-- that finds none, or another region than its pipeline's [lookup] default_region, builds the
-- index again from the table, in its transaction.
CREATE TABLE number_index (
    region TEXT NOT NULL
);
