#!/usr/bin/env bash
# Runs every test of ucm: unit tests, integration tests against real SQLite files and the real
# binary, and the validator's agreement with libxml2's xmllint.
#
# The one thing the tests need besides Rust is xmllint (Debian package libxml2-utils); it is
# installed here when missing and this runs as root with apt-get, otherwise the script says
# how to install it. Extra arguments go to `cargo test` (e.g. a test name).
set -euo pipefail
cd "$(dirname "$0")/.."

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

exec cargo test --locked "$@"
