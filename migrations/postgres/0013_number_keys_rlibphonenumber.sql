-- ucm schema, version 13: numbers are normalised by rlibphonenumber (a port of libphonenumber
-- that loads its metadata in about 10 ms instead of about 100 ms) instead of the phonenumber
-- crate. Both give the same E.164 keys for every spelling ucm's tests and benchmarks use, but
-- not for every spelling there is (phonenumber dropped the 0 of an Italian +39 06 number read
-- with another default region, refused a `;ext=` suffix and full-width digits): the number
-- index is forgotten, and the next run (or `ucm serve` at its start) builds it again from
-- the table with the new normaliser, in its transaction.
DELETE FROM number_index;
