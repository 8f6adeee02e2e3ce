#!/usr/bin/env bash
# Runs every test of ucm, twice: against SQLite files, then the same tests against a real
# PostgreSQL server (unit tests, integration tests with the real binary, the validator's
# agreement with libxml2's xmllint).
#
# The tests need xmllint (Debian package libxml2-utils; installed here when missing and this
# runs as root with apt-get) and, for the second pass, PostgreSQL:
#   - UCM_TEST_POSTGRES_URL set (an administrator's URL, e.g.
#     postgres://postgres@127.0.0.1:5432/postgres): the tests use that server, one fresh
#     database per test;
#   - otherwise, with initdb, pg_ctl and postgres on the PATH, this starts a throwaway server
#     (scripts/postgres.sh) in a temporary directory and stops it at the end, pass or fail;
#   - UCM_TEST_SKIP_POSTGRES=1 runs the SQLite pass only.
# Extra arguments go to both `cargo test` runs (e.g. a test name).
#
# First, the layout rules (ARCHITECTURE.md): no import circle between the files of src/, no
# file over 700 lines, no function over 100 lines outside tests (scripts/check-layout.py).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 scripts/check-layout.py

if ! command -v xmllint >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: installing xmllint (libxml2-utils)" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libxml2-utils >/dev/null
  else
    echo "scripts/test.sh: xmllint is missing; install it: sudo apt-get install libxml2-utils" >&2
    exit 1
  fi
fi

echo "scripts/test.sh: SQLite pass" >&2
UCM_TEST_POSTGRES_URL='' cargo test --locked "$@"

if [ "${UCM_TEST_SKIP_POSTGRES:-}" = 1 ]; then
  echo "scripts/test.sh: PostgreSQL pass skipped (UCM_TEST_SKIP_POSTGRES=1)" >&2
  exit 0
fi
if [ -z "${UCM_TEST_POSTGRES_URL:-}" ]; then
  if ! command -v initdb >/dev/null 2>&1; then
    echo "scripts/test.sh: PostgreSQL (initdb, pg_ctl, postgres) is missing: install PostgreSQL 15," \
      "or set UCM_TEST_POSTGRES_URL to a server, or UCM_TEST_SKIP_POSTGRES=1 to skip that pass" >&2
    exit 1
  fi
  pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/ucm-test-pg.XXXXXX")
  chmod 755 "$pg_dir"
  trap 'scripts/postgres.sh stop "$pg_dir/server"; rm -rf "$pg_dir"' EXIT
  UCM_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$pg_dir/server")
  export UCM_TEST_POSTGRES_URL
fi
echo "scripts/test.sh: PostgreSQL pass ($UCM_TEST_POSTGRES_URL)" >&2
cargo test --locked "$@"
