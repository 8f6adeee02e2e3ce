-- ucm schema, version 5: versions of live-state changes as typed values. Each part's version
-- is kept as a packed clock (milliseconds << 20 | counter) and the node that made it, and
-- compared as (clock, node): never as text. The text column keeps the canonical rendering
-- (MILLIS.COUNTER.NODE, 13 and 7 digits) for the API.
ALTER TABLE contact_state ADD COLUMN status_clock BIGINT;
ALTER TABLE contact_state ADD COLUMN status_node TEXT;
ALTER TABLE contact_state ADD COLUMN profile_clock BIGINT;
ALTER TABLE contact_state ADD COLUMN profile_node TEXT;
-- Versions written by earlier releases: MILLIS (13 digits) . COUNTER (5 digits) . NODE.
UPDATE contact_state
   SET status_clock = CAST(substr(status_version, 1, 13) AS BIGINT) * 1048576
                    + CAST(substr(status_version, 15, 5) AS BIGINT),
       status_node = substr(status_version, 21),
       status_version = substr(status_version, 1, 14) || '00' || substr(status_version, 15)
 WHERE status_version ~ '^[0-9]{13}\.[0-9]{5}\..+$';
UPDATE contact_state
   SET profile_clock = CAST(substr(profile_version, 1, 13) AS BIGINT) * 1048576
                     + CAST(substr(profile_version, 15, 5) AS BIGINT),
       profile_node = substr(profile_version, 21),
       profile_version = substr(profile_version, 1, 14) || '00' || substr(profile_version, 15)
 WHERE profile_version ~ '^[0-9]{13}\.[0-9]{5}\..+$';
-- A version that is not one (stored unchecked by earlier releases, e.g. "~") is dropped: the
-- next real change wins over it.
UPDATE contact_state SET status_version = NULL WHERE status_clock IS NULL;
UPDATE contact_state SET profile_version = NULL WHERE profile_clock IS NULL;
