#!/usr/bin/env python3
"""The peer ucm is measured against: the import an administrator could write in an afternoon
instead of using ucm. It streams the contacts XML with lxml, validating it against
schemas/contacts.xsd as it goes, merges each contact with the internal directory (a CSV loaded
into a dict, matched on the lower-cased e-mail; the external value wins where it has one), and
inserts the merged rows into SQLite with sqlite3 in one transaction. No number index, no search
index, no provenance, no change detection: a fresh table each run.

Usage: benches/peer/import.py CONTACTS.xml DIRECTORY.csv OUT.db
Needs: python3 with lxml (pip install lxml).
"""

import csv
import os
import sqlite3
import sys

from lxml import etree

FIELDS = [
    "extension", "first_name", "last_name", "mobile_number", "fax_number", "home_number",
    "e_mail", "site", "department", "office", "owner", "source",
    "user_1", "user_2", "user_3", "user_4", "user_5", "user_6", "user_7", "user_8", "user_9",
    "user_10",
]
XSD = os.path.join(os.path.dirname(__file__), "..", "..", "schemas", "contacts.xsd")
BATCH = 10_000


def load_directory(path):
    """The directory's entries by lower-cased e-mail (entries without one are kept apart)."""
    by_mail, others = {}, []
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            entry = {k: (v or None) for k, v in row.items() if k in FIELDS}
            mail = (row.get("e_mail") or "").strip().lower()
            if mail:
                by_mail[mail] = entry
            else:
                others.append(entry)
    return by_mail, others


def main(xml_path, directory_path, db_path):
    schema = etree.XMLSchema(etree.parse(XSD))
    directory, unmatched = load_directory(directory_path)
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("DROP TABLE IF EXISTS contacts")
    columns = ", ".join(f"{name} TEXT" for name in FIELDS)
    db.execute(f"CREATE TABLE contacts (id INTEGER PRIMARY KEY, origin TEXT NOT NULL, {columns})")
    insert = "INSERT INTO contacts (origin, {}) VALUES (?, {})".format(
        ", ".join(FIELDS), ", ".join("?" for _ in FIELDS)
    )
    rows = []
    for _, element in etree.iterparse(xml_path, tag="contact", schema=schema):
        contact = {child.tag: (child.text or "").strip() or None for child in element}
        mail = (contact.get("e_mail") or "").lower()
        internal = directory.pop(mail, None)
        if internal is None:
            rows.append(("external", *(contact.get(f) for f in FIELDS)))
        else:
            rows.append(("merged", *(contact.get(f) or internal.get(f) for f in FIELDS)))
        element.clear()
        while element.getprevious() is not None:
            del element.getparent()[0]
        if len(rows) >= BATCH:
            db.executemany(insert, rows)
            rows.clear()
    for entry in list(directory.values()) + unmatched:
        rows.append(("directory", *(entry.get(f) for f in FIELDS)))
    db.executemany(insert, rows)
    db.commit()
    db.close()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
