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

. benches/service_bench.sh
bench_begin search search_load
db=${UCM_BENCH_POSTGRES_URL:-sqlite://$WORK/ucm.db}
bench_load "$contacts" 7 "$db"
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
bench_serve search.sh
for c in $clients; do cargo bench --quiet --bench search_load -- "$base" bench-token "$c" "$seconds"; done
