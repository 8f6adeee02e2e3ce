#!/usr/bin/env bash
# The LDAP directory under phones typing: a table of N contacts (default 1,000,000: N external
# contacts and a directory of N/10) imported into SQLite with [lookup] default_region = "BE",
# `ucm serve` started with [ldap] on 127.0.0.1, then CLIENTS phones (default 50) searching as
# their users type, for SECONDS seconds (default 20): once with PAUSE_MS between keystrokes
# (default 100), once with none (each client sends its next search as soon as the last is
# answered: far more than 50 people). See benches/ldap_load.rs for the searches.
# Each way runs twice: alone, then with one abusive address (ABUSIVE connections, default
# 3, sending unindexed searches back to back: `(|(cn=*zzqx*)(telephoneNumber=*9999999*))`
# reads the whole table). A PBX's caller-ID lookups (LOOKUP_RATE a second, default 100,
# benches/lookup_load.rs) run beside the phones every time.
# Prints the fresh import's time, then for each run the typing clients' searches, entries,
# errors, p50, p99, max, and the lookups' p50, p99, max; and the service's peak memory.
# Target: the typing clients' p99 under 20 ms and no error, abusive address or not.
#
# Usage: benches/ldap.sh [CONTACTS] [CLIENTS] [SECONDS] [PAUSE_MS]
# Environment: ABUSIVE (connections of the abusive address), LOOKUP_RATE.
# Set UCM_BENCH_POSTGRES_URL (a database URL) to load and search in PostgreSQL instead.
# Needs: cargo, sqlite3 (or psql for PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
contacts=${1:-1000000}; clients=${2:-50}; seconds=${3:-20}; pause=${4:-100}
abusive=${ABUSIVE:-3}; lookup_rate=${LOOKUP_RATE:-100}

. benches/service_bench.sh
bench_begin ldap ldap_load
cargo bench --no-run --quiet --bench lookup_load 2>/dev/null
db=${UCM_BENCH_POSTGRES_URL:-sqlite://$WORK/ucm.db}
bench_load "$contacts" 11 "$db" '[lookup]
default_region = "BE"'
bench_numbers "$WORK/numbers.txt"

suffix="ou=contacts,dc=example,dc=com"
cat > "$WORK/service.toml" <<TOML
listen = "127.0.0.1:0"
pipelines = ["$WORK/bench.toml"]
[auth]
username = "admin"
password_env = "UCM_BENCH_PASSWORD"
[ldap]
listen = "127.0.0.1:0"
base_dn = "$suffix"
pipeline = "bench"
bind_dn = "cn=phones,$suffix"
password_env = "UCM_BENCH_PASSWORD"
[[lookups]]
pipeline = "bench"
token = "bench-lookup-token-0123"
TOML
bench_serve ldap.sh ucm=info
for _ in $(seq 100); do grep -q "LDAP directory listening" "$WORK/serve.log" && break; sleep 0.1; done
address=$(sed -n 's/.*LDAP directory listening on ldap:\/\/\([^ ]*\).*/\1/p' "$WORK/serve.log" | head -1)
[ -n "$address" ] || { echo "ldap.sh: the service did not start:"; cat "$WORK/serve.log"; exit 1; }
for wait in "$pause" 0; do
  for abuse in 0 "$abusive"; do
    # The lookups start with the phones and count the same window (after 2 s of warm-up).
    cargo bench --quiet --bench lookup_load -- "$base/lookup/bench/bench-lookup-token-0123" \
      "$WORK/numbers.txt" "$lookup_rate" "$seconds" > "$WORK/lookups.out" &
    lookups=$!
    UCM_BENCH_ABUSIVE=$abuse cargo bench --quiet --bench ldap_load -- "$address" \
      "cn=phones,$suffix" bench-phones "$suffix" "$clients" "$seconds" "$wait"
    wait "$lookups"
    sed 's/^/  lookups: /' "$WORK/lookups.out" | grep -v '^  lookups: *$'
  done
done
echo "service peak memory: $(bench_peak) MiB"
