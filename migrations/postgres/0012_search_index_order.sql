-- ucm schema, version 12: the name and e-mail search indexes of version 6 hold the row id
-- after the key, so that reading a range "by key, then id" (the contact search, the LDAP
-- directory's typed-ahead searches and their paged results cursor) is the index's own order
-- and needs no sort. SQLite's indexes already end with the rowid (its version 12 changes
-- nothing).
DROP INDEX contacts_search_first_name;
DROP INDEX contacts_search_last_name;
DROP INDEX contacts_search_e_mail;
CREATE INDEX contacts_search_first_name ON contacts ((lower(first_name COLLATE "C")), id);
CREATE INDEX contacts_search_last_name ON contacts ((lower(last_name COLLATE "C")), id);
CREATE INDEX contacts_search_e_mail ON contacts ((lower(e_mail COLLATE "C")), id);
