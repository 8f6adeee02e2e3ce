#!/usr/bin/env bash
# Caller-ID lookup under a PBX's load: a table of N contacts (default 1,000,000: N external
# contacts and a directory of N/10) imported into SQLite with [lookup] default_region = "BE",
# `ucm serve` started on 127.0.0.1 with a [[lookups]] endpoint, then RATE lookups a second
# (default 500) for SECONDS seconds (default 20), each due on schedule (benches/lookup_load.rs).
# The numbers asked: 2,000 of the table's mobile numbers, each in one of four spellings
# (+32 47x xxxxxx as stored, 047x xx xx xx, 0032..., the national number alone), and 500
# numbers no contact has. Prints the fresh import's time, the index's size, found / unknown /
# errors, p50, p99 and max latency, and the service's peak memory.
# Target: p99 under 5 ms, no error.
#
# Usage: benches/lookup.sh [CONTACTS] [RATE] [SECONDS]
# Set UCM_BENCH_POSTGRES_URL (a database URL) to load and look up in PostgreSQL instead.
# Needs: cargo, sqlite3 (or psql for PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
contacts=${1:-1000000}; rate=${2:-500}; seconds=${3:-20}

. benches/service_bench.sh
bench_begin lookup lookup_load
db=${UCM_BENCH_POSTGRES_URL:-sqlite://$WORK/ucm.db}
bench_load "$contacts" 11 "$db" '[lookup]
default_region = "BE"'

echo "number index: $(bench_query "SELECT count(*) FROM contact_numbers") keys"
bench_numbers "$WORK/numbers.txt"

cat > "$WORK/service.toml" <<TOML
listen = "127.0.0.1:0"
pipelines = ["$WORK/bench.toml"]
[auth]
username = "admin"
password_env = "UCM_BENCH_PASSWORD"
[[lookups]]
pipeline = "bench"
token = "bench-lookup-token-0123"
TOML
bench_serve lookup.sh
cargo bench --quiet --bench lookup_load -- "$base/lookup/bench/bench-lookup-token-0123" "$WORK/numbers.txt" "$rate" "$seconds"
echo "service peak memory: $(bench_peak) MiB"
