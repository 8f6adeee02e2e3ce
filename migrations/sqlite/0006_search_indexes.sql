-- ucm schema, version 6: contact search from indexes (src/serve/search.rs). Each key a search
-- reads is an expression index, searched as a prefix range in index order: names and e-mail
-- lowercased (ASCII letters), extension and mobile number with their separators removed. The
-- expressions must stay identical to search.rs's, or the search scans the table (a test reads
-- the query plan). Why these and not substring search, FTS5 or trigrams:
-- docs/decisions/0008-indexed-contact-search.md.
CREATE INDEX contacts_search_first_name ON contacts (lower(first_name));
CREATE INDEX contacts_search_last_name ON contacts (lower(last_name));
CREATE INDEX contacts_search_e_mail ON contacts (lower(e_mail));
CREATE INDEX contacts_search_extension ON contacts (replace(replace(replace(replace(replace(replace(replace(extension, ' ', ''), '-', ''), '+', ''), '/', ''), '(', ''), ')', ''), '.', ''));
CREATE INDEX contacts_search_mobile ON contacts (replace(replace(replace(replace(replace(replace(replace(mobile_number, ' ', ''), '-', ''), '+', ''), '/', ''), '(', ''), ')', ''), '.', ''));
