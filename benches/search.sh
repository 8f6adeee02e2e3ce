#!/usr/bin/env bash
# Contact search under load: a directory of N contacts (default 1,000,000) imported into
# SQLite, `ucm serve` started on 127.0.0.1, then 50 concurrent clients search as people type
# for 20 s while one more client reads /api/pipelines and /health (benches/search_load.rs).
# Prints request counts, errors, p50/p99/max per endpoint, and the fresh import's time.
# Target: search p99 under 20 ms, other endpoints unaffected.
#
# Usage: benches/search.sh [CONTACTS] [CLIENTS] [SECONDS]
# Set UCM_BENCH_POSTGRES_URL (a database URL) to load and search PostgreSQL instead.
set -euo pipefail
cd "$(dirname "$0")/.."
contacts=${1:-1000000}; clients=${2:-50}; seconds=${3:-20}

cargo build --release --quiet
cargo bench --no-run --quiet --bench search_load 2>/dev/null
UCM=$PWD/target/release/ucm
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ucm-search.XXXXXX")
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

db=${UCM_BENCH_POSTGRES_URL:-sqlite://$WORK/ucm.db}
"$UCM" -q generate --contacts "$contacts" --directory $(( contacts / 10 )) --seed 7 \
  --xml "$WORK/contacts.xml" --csv "$WORK/directory.csv"
"$UCM" -q --db "$db" directory load "$WORK/directory.csv"
start=$(date +%s.%N)
"$UCM" -q --db "$db" import "$WORK/contacts.xml" >/dev/null
echo "fresh import of $contacts contacts: $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.2f", e - s}') s"

cat > "$WORK/bench.toml" <<TOML
name = "bench"
[source]
url = "$WORK/contacts.xml"
schedule = "0 0 1 1 ?"
[merge]
schedule = "0 0 1 1 ?"
[database]
url = "$db"
TOML
cat > "$WORK/service.toml" <<TOML
listen = "127.0.0.1:0"
pipelines = ["$WORK/bench.toml"]
[auth]
username = "admin"
password_env = "UCM_BENCH_PASSWORD"
token = "bench-token"
[limits]
max_connections_per_client = 256
TOML
UCM_BENCH_PASSWORD=unused UCM_LOG=warn "$UCM" serve --service "$WORK/service.toml" > "$WORK/serve.out" 2> "$WORK/serve.log" &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/serve.out" && break; sleep 0.1; done
base=$(sed -n 's/^ucm serve: listening on //p' "$WORK/serve.out")
[ -n "$base" ] || { echo "search.sh: the service did not start:"; cat "$WORK/serve.log"; exit 1; }
for c in $clients; do cargo bench --quiet --bench search_load -- "$base" bench-token "$c" "$seconds"; done
