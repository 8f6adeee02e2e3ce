# Sourced by the benches that query a running `ucm serve` over a generated directory
# (search.sh, phonebook.sh, lookup.sh, ldap.sh): the release build, a work folder removed at
# exit (with the service stopped), the table, and the service.

# bench_begin NAME [BENCH_TARGET]: builds ucm (and the load client BENCH_TARGET), sets UCM
# and WORK.
bench_begin() {
  cargo build --release --quiet
  if [ -n "${2:-}" ]; then cargo bench --no-run --quiet --bench "$2" 2>/dev/null; fi
  UCM=$PWD/target/release/ucm
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/ucm-$1.XXXXXX")
  server=
  trap 'bench_end' EXIT
}

bench_end() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null; fi
  wait 2>/dev/null
  rm -rf "$WORK"
}

# bench_load CONTACTS SEED DB [PIPELINE_TOML]: N external contacts and a directory of N/10
# (seeded), the pipeline "bench" in $WORK/bench.toml (with PIPELINE_TOML added), loaded into
# DB by a fresh import whose time is printed.
bench_load() {
  local contacts=$1 seed=$2 db=$3 extra=${4:-}
  cat > "$WORK/bench.toml" <<TOML
name = "bench"
[source]
url = "$WORK/contacts.xml"
schedule = "0 0 1 1 ?"
[merge]
schedule = "0 0 1 1 ?"
$extra
[database]
url = "$db"
TOML
  "$UCM" -q generate --contacts "$contacts" --directory $(( contacts / 10 )) --seed "$seed" \
    --xml "$WORK/contacts.xml" --csv "$WORK/directory.csv"
  "$UCM" -q -c "$WORK/bench.toml" directory load "$WORK/directory.csv"
  local start
  start=$(date +%s.%N)
  "$UCM" -q -c "$WORK/bench.toml" import "$WORK/contacts.xml" >/dev/null
  echo "fresh import of $contacts contacts: $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.2f", e - s}') s"
}

# bench_serve NAME [LOG_FILTER]: starts `ucm serve --service $WORK/service.toml` (the admin
# password in UCM_BENCH_PASSWORD: "bench-phones"), sets server and base (its HTTP URL).
bench_serve() {
  UCM_BENCH_PASSWORD=bench-phones UCM_LOG=${2:-warn} "$UCM" serve --service "$WORK/service.toml" \
    > "$WORK/serve.out" 2> "$WORK/serve.log" &
  server=$!
  for _ in $(seq 100); do grep -q "listening on" "$WORK/serve.out" && break; sleep 0.1; done
  base=$(sed -n 's/^ucm serve: listening on //p' "$WORK/serve.out")
  [ -n "$base" ] || { echo "$1: the service did not start:"; cat "$WORK/serve.log"; exit 1; }
}

# The service's peak resident memory so far, in MiB.
bench_peak() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$server/status"; }

# bench_query SQL: runs SQL on $db (SQLite or PostgreSQL), one row a line.
bench_query() {
  case "$db" in
    sqlite://*) sqlite3 "${db#sqlite://}" "$1" ;;
    *) psql "$db" -X -q -A -t -c "$1" ;;
  esac
}

# bench_numbers FILE: the numbers a PBX asks the lookup (benches/lookup_load.rs), shuffled:
# 2,000 of the table's mobile numbers, each in one of four spellings (+32 47x xxxxxx as
# stored, 047x xx xx xx, 0032..., the national number alone), and 500 numbers no contact has
# (no generated number starts 046).
bench_numbers() {
  bench_query "SELECT mobile_number FROM contacts WHERE mobile_number LIKE '+32 47%' ORDER BY random() LIMIT 2000" |
    awk '{ n = $2 $3; s = NR % 4;
           if (s == 0) print $0; else if (s == 1) print "0" substr(n, 1, 3) " " substr(n, 4, 2) " " substr(n, 6, 2) " " substr(n, 8);
           else if (s == 2) print "0032" n; else print n }' > "$1"
  for i in $(seq 500); do printf '046%07d\n' "$i"; done >> "$1"
  shuf --random-source=<(yes) "$1" -o "$1"
}
