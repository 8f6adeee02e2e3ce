#!/usr/bin/env bash
# Measures ucm against public baselines in the same run and prints ratios:
#   1. `ucm validate` against `xmllint --noout --stream --schema schemas/contacts.xsd`;
#   2. a fresh `ucm import` (empty database) against the SQLite floor: the time SQLite itself
#      takes to `INSERT INTO contacts SELECT * FROM` a table already holding the same merged
#      rows (and `contact_numbers` the same number index keys), with the same schema, indexes
#      and pragmas (the search indexes, the index by number and the keys' indexes dropped
#      before and built after, as a fresh ucm import does), each floor timed right after a
#      fresh import and ucm/floor the median of the run-by-run ratios;
#   3. a second, unchanged `ucm import` of the same file against the fresh one;
#   4. peak resident memory (GNU time) of each ucm run;
#   5. fresh imports of the same contacts as a CSV source and as vCards (`kind = "csv"`,
#      `kind = "vcard"`: `ucm generate --source-csv/--vcard`) against the XML's fresh import
#      (the median of the ratios run by run), and their peak memory;
#   6. on data shaped like real directories (`ucm generate --realistic`): ucm's fresh and
#      unchanged imports against the peer, a plain Python script a user could write instead
#      (benches/peer/import.py; python's lxml), and their peak memory;
#   7. a fresh `ucm import` into PostgreSQL against PostgreSQL's floor: `COPY contacts FROM`
#      of the same merged rows and `COPY contact_numbers FROM` of the same keys (psql's \copy)
#      into an empty table with the same indexes (the search, number and key indexes built
#      after the copy in its transaction, as ucm does), on the same server. The server is a
#      throwaway one (scripts/postgres.sh), or the one UCM_BENCH_POSTGRES_URL names (an
#      administrator's URL); POSTGRES=0 leaves this out.
# For 40,000 and 1,000,000 contacts (directories of 5,000 / 100,000 entries, 30% overlap,
# seeded), RUNS runs each (default 5: the machine is shared and noisy), medians. Exits 1 when
# a target is missed.
#
# Needs: cargo, xmllint (libxml2-utils), sqlite3, GNU time (/usr/bin/time), and for the
# PostgreSQL rows psql and PostgreSQL (initdb, pg_ctl, postgres).
# Usage: benches/compare.sh [SIZE ...]     e.g. benches/compare.sh 40000
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(40000 1000000)
for tool in xmllint sqlite3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "compare.sh: $tool is missing (apt-get install libxml2-utils sqlite3 time)" >&2; exit 2; }
done

cargo build --release --quiet
UCM=$PWD/target/release/ucm
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ucm-compare.XXXXXX")
chmod 755 "$WORK"
PG_ADMIN=${UCM_BENCH_POSTGRES_URL:-}
cleanup() {
  if [ -z "${UCM_BENCH_POSTGRES_URL:-}" ] && [ -n "$PG_ADMIN" ]; then scripts/postgres.sh stop "$WORK/pg"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
if [ "${POSTGRES:-1}" = 1 ] && [ -z "$PG_ADMIN" ]; then
  if command -v initdb >/dev/null && command -v psql >/dev/null; then
    PG_ADMIN=$(scripts/postgres.sh start "$WORK/pg")
  else
    echo "compare.sh: PostgreSQL or psql is missing: the PostgreSQL rows are left out (POSTGRES=0 to say so)" >&2
  fi
fi
[ "${POSTGRES:-1}" = 1 ] || PG_ADMIN=
# The peer script needs python's lxml; PEER=0 leaves its rows out.
PEER=${PEER:-1}
if [ "$PEER" = 1 ] && ! python3 -c 'import lxml' 2>/dev/null; then
  echo "compare.sh: python's lxml is missing (pip install lxml): the peer script's rows are left out (PEER=0 to say so)" >&2
  PEER=0
fi
# pg_url NAME: the URL of database NAME on the benchmark's server (created empty).
pg_url() {
  PGOPTIONS="-c client_min_messages=warning" psql "$PG_ADMIN" -X -q -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
  echo "${PG_ADMIN%/*}/$1"
}

# time_run OUT CMD...: runs CMD under GNU time; appends "seconds peak_kb" to OUT.
time_run() {
  local out=$1; shift
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/stderr.txt" || {
    echo "compare.sh: failed: $*" >&2; cat "$WORK/stderr.txt" >&2; exit 2; }
  cat "$WORK/time.txt" >> "$out"
}
# median FILE COLUMN
median() { awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }
# pair_ratio A_FILE B_FILE: the median of the runs' ratios A/B, run by run (run k of A was
# timed right after run k of B, so a drift of the machine's speed cancels out).
pair_ratio() {
  paste -d' ' <(awk '{print $1}' "$1") <(awk '{print $1}' "$2") | awk '{print ($2 > 0) ? $1 / $2 : 0}' > "$WORK/pairs.txt"
  printf '%.2f' "$(median "$WORK/pairs.txt" 1)"
}

# The search indexes a fresh import builds after loading (src/load/run.rs).
# With them, the number index's contact_numbers_by_number (migration 0010).
# (Migration 0011 dropped the two number ones: numbers are searched in the number index.)
DROP_SEARCH="DROP INDEX contacts_search_first_name; DROP INDEX contacts_search_last_name; DROP INDEX contacts_search_e_mail; DROP INDEX contact_numbers_by_number;"
# create_search BACKEND: the CREATE INDEX statements of the indexes still there, as their last
# migration made them (PostgreSQL's 0012 added the row id after the key).
create_search() {
  local m=0006_search_indexes.sql; [ "$1" = postgres ] && m=0012_search_index_order.sql
  grep -E '^CREATE INDEX contacts_search_(first_name|last_name|e_mail) ' "migrations/$1/$m"
}
CREATE_BY_NUMBER="CREATE INDEX contact_numbers_by_number ON contact_numbers (number, rank, contact_id);"
# A fresh import also builds the keys' unique indexes after loading (src/load/run.rs; the same
# statements on both backends): the floors do the same.
DROP_KEYS="DROP INDEX contacts_by_directory_id; DROP INDEX contacts_by_external_key;"
CREATE_KEYS=$(grep -E '^CREATE UNIQUE INDEX contacts_by_(directory_id|external_key) ' migrations/sqlite/0001_init.sql)

# The SQLite floor: the same merged rows and number index keys, copied by SQLite itself into
# the empty tables. Like a fresh ucm import (src/load/run.rs), it loads without the search
# indexes, the index by number and the keys' indexes, and builds them afterwards by sorting,
# in the same transaction. make_floor FRESH_DB FLOOR_DB: the rows of a fresh import, moved
# aside into tables of their own in a copy of it.
make_floor() {
  cp "$1" "$2"
  sqlite3 "$2" "PRAGMA journal_mode=WAL; CREATE TABLE floor_source AS SELECT * FROM contacts; DELETE FROM contacts; CREATE TABLE floor_numbers AS SELECT * FROM contact_numbers; DELETE FROM contact_numbers; VACUUM;" >/dev/null
}
FLOOR_SQL="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-8192; BEGIN IMMEDIATE; $DROP_SEARCH $DROP_KEYS INSERT INTO contacts SELECT * FROM floor_source; INSERT INTO contact_numbers SELECT * FROM floor_numbers; $(create_search sqlite) $CREATE_BY_NUMBER $CREATE_KEYS COMMIT;"

status=0
check() { # check DESCRIPTION OK(0/1)
  if [ "$2" = 1 ]; then printf '  %-62s ok\n' "$1"; else printf '  %-62s MISSED\n' "$1"; status=1; fi
}

declare -A PEAK
for n in "${SIZES[@]}"; do
  dir_entries=$(( n >= 1000000 ? 100000 : 5000 ))
  xml=$WORK/contacts-$n.xml; csv=$WORK/directory-$n.csv
  source_csv=$WORK/contacts-$n.csv; vcard=$WORK/contacts-$n.vcf
  "$UCM" generate --contacts "$n" --directory "$dir_entries" --overlap 0.3 --seed 42 --xml "$xml" --csv "$csv" \
    --source-csv "$source_csv" --vcard "$vcard"
  printf '[source]\nkind = "csv"\n' > "$WORK/csv.toml"
  printf '[source]\nkind = "vcard"\n[source.mapping]\noffice = "X-OFFICE"\nsource = "X-SOURCE"\n' > "$WORK/vcard.toml"
  bytes=$(stat -c %s "$xml")
  rm -f "$WORK"/*.times
  for run in $(seq "$RUNS"); do
    time_run "$WORK/validate.times" "$UCM" -q validate "$xml"
    time_run "$WORK/xmllint.times" xmllint --noout --stream --schema schemas/contacts.xsd "$xml"
    db=$WORK/fresh-$n-$run.db
    "$UCM" -q --db "sqlite://$db" directory load "$csv"
    time_run "$WORK/fresh.times" "$UCM" -q --db "sqlite://$db" import "$xml"
    # The floor (below), timed right after each fresh import: made once from the first.
    [ "$run" = 1 ] && make_floor "$db" "$WORK/floor-$n.db"
    cp "$WORK/floor-$n.db" "$WORK/floor-run.db"
    time_run "$WORK/floor.times" sqlite3 "$WORK/floor-run.db" "$FLOOR_SQL"
    rm -f "$WORK"/floor-run.db*
    time_run "$WORK/again.times" "$UCM" -q --db "sqlite://$db" import "$xml"
    for kind in csv vcard; do
      kdb=$WORK/$kind-$n-$run.db
      "$UCM" -q -c "$WORK/$kind.toml" --db "sqlite://$kdb" directory load "$csv"
      file=$source_csv; [ "$kind" = vcard ] && file=$vcard
      time_run "$WORK/$kind.times" "$UCM" -q -c "$WORK/$kind.toml" --db "sqlite://$kdb" import "$file"
      rm -f "$kdb"*
    done
  done
  rm -f "$WORK"/fresh-$n-*.db* "$WORK"/floor-*.db*

  v=$(median "$WORK/validate.times" 1); x=$(median "$WORK/xmllint.times" 1)
  f=$(median "$WORK/fresh.times" 1); a=$(median "$WORK/again.times" 1); fl=$(median "$WORK/floor.times" 1)
  vm=$(median "$WORK/validate.times" 2); fm=$(median "$WORK/fresh.times" 2); am=$(median "$WORK/again.times" 2)
  PEAK[$n]=$(( fm > am ? fm : am ))
  mbps=$(awk -v b="$bytes" -v t="$v" 'BEGIN {printf "%.0f", b / 1048576 / t}')
  echo
  echo "== $n contacts ($(( bytes / 1048576 )) MiB, directory $dir_entries), median of $RUNS runs"
  printf '  ucm validate      %7.2f s  (%s MiB/s)   xmllint --stream --schema %7.2f s   xmllint/ucm %s\n' "$v" "$mbps" "$x" "$(ratio "$x" "$v")"
  # Run by run: each floor was timed right after the same run's fresh import.
  ufl=$(pair_ratio "$WORK/fresh.times" "$WORK/floor.times")
  printf '  ucm import fresh  %7.2f s   SQLite floor (INSERT ... SELECT)   %7.2f s   ucm/floor   %s\n' "$f" "$fl" "$ufl"
  printf '  ucm import again  %7.2f s   (unchanged)                                     again/fresh %s\n' "$a" "$(ratio "$a" "$f")"
  printf '  peak memory       validate %d MiB, fresh import %d MiB, unchanged import %d MiB\n' $(( vm / 1024 )) $(( fm / 1024 )) $(( am / 1024 ))
  c=$(median "$WORK/csv.times" 1); cm=$(median "$WORK/csv.times" 2)
  vc=$(median "$WORK/vcard.times" 1); vcm=$(median "$WORK/vcard.times" 2)
  # Run by run: each CSV and vCard import is timed right after the same run's XML import.
  cr=$(pair_ratio "$WORK/csv.times" "$WORK/fresh.times"); vr=$(pair_ratio "$WORK/vcard.times" "$WORK/fresh.times")
  printf '  CSV source fresh  %7.2f s   (%d MiB)   vCard source fresh %7.2f s (%d MiB)   csv/xml %s  vcard/xml %s\n' \
    "$c" $(( cm / 1024 )) "$vc" $(( vcm / 1024 )) "$cr" "$vr"
  if [ "$n" -le 40000 ] || [ "$n" -ge 1000000 ]; then
    check "fresh import within 1.2x the SQLite floor" "$(awk -v r="$ufl" 'BEGIN {print (r <= 1.2) ? 1 : 0}')"
  fi
  if [ "$n" -ge 1000000 ]; then
    check "validate at least 3x faster than xmllint" "$(awk -v a="$x" -v b="$v" 'BEGIN {print (a >= 3 * b) ? 1 : 0}')"
    check "unchanged re-import at most 0.3x the fresh import" "$(awk -v a="$a" -v b="$f" 'BEGIN {print (a <= 0.3 * b) ? 1 : 0}')"
    check "peak memory at most 150 MB" "$(( PEAK[$n] * 1024 <= 150000000 ? 1 : 0 ))"
    # Both imports wait on the same SQLite writer thread (docs/performance.md): a tie reads as
    # 0.99-1.01 run to run, so "no slower" allows the machine's noise and no more.
    check "CSV source import no slower than XML's (ratio at most 1.02)" "$(awk -v r="$cr" 'BEGIN {print (r <= 1.02) ? 1 : 0}')"
    check "vCard source import within 1.3x XML's" "$(awk -v r="$vr" 'BEGIN {print (r <= 1.3) ? 1 : 0}')"
    check "CSV and vCard imports' peak memory at most 150 MB" "$(( (cm > vcm ? cm : vcm) * 1024 <= 150000000 ? 1 : 0 ))"
  fi
  # Data shaped like real directories (`ucm generate --realistic`): ucm against the peer, the
  # plain script a user could write instead (benches/peer/import.py: lxml with the XSD, a dict
  # merge, sqlite3 inserts, no index), the ratio run by run.
  if [ "$PEER" = 1 ]; then
    rxml=$WORK/realistic-$n.xml; rcsv=$WORK/realistic-directory-$n.csv
    "$UCM" generate --realistic --contacts "$n" --directory "$dir_entries" --overlap 0.3 --seed 42 --xml "$rxml" --csv "$rcsv"
    rm -f "$WORK"/real-*.times
    for run in $(seq "$RUNS"); do
      rdb=$WORK/real-$n-$run.db
      "$UCM" -q --db "sqlite://$rdb" directory load "$rcsv"
      time_run "$WORK/real-fresh.times" "$UCM" -q --db "sqlite://$rdb" import "$rxml"
      time_run "$WORK/real-again.times" "$UCM" -q --db "sqlite://$rdb" import "$rxml"
      time_run "$WORK/real-peer.times" python3 benches/peer/import.py "$rxml" "$rcsv" "$WORK/peer-$n-$run.db"
      rm -f "$rdb"* "$WORK/peer-$n-$run.db"*
    done
    rf=$(median "$WORK/real-fresh.times" 1); ra=$(median "$WORK/real-again.times" 1); rp=$(median "$WORK/real-peer.times" 1)
    rfm=$(median "$WORK/real-fresh.times" 2); ram=$(median "$WORK/real-again.times" 2)
    pr=$(pair_ratio "$WORK/real-peer.times" "$WORK/real-fresh.times")
    printf '  realistic data    ucm fresh %7.2f s (%d MiB), again %5.2f s (%d MiB)   peer script %7.2f s   peer/ucm %s\n' \
      "$rf" $(( rfm / 1024 )) "$ra" $(( ram / 1024 )) "$rp" "$pr"
    if [ "$n" -ge 200000 ]; then
      check "ucm at least 4x faster than the peer script (realistic data)" "$(awk -v r="$pr" 'BEGIN {print (r >= 4) ? 1 : 0}')"
    fi
    if [ "$n" -ge 1000000 ]; then
      check "realistic data: unchanged re-import at most 0.15x the fresh one" "$(awk -v a="$ra" -v b="$rf" 'BEGIN {print (a <= 0.15 * b) ? 1 : 0}')"
      check "realistic data: peak memory at most 150 MB" "$(( (rfm > ram ? rfm : ram) * 1024 <= 150000000 ? 1 : 0 ))"
    fi
  fi
  if [ -n "$PG_ADMIN" ]; then
    rm -f "$WORK"/pg*.times
    for run in $(seq "$RUNS"); do
      url=$(pg_url "ucm_bench_$run")
      "$UCM" -q --db "$url" directory load "$csv"
      time_run "$WORK/pgfresh.times" "$UCM" -q --db "$url" import "$xml"
    done
    # The floor: the rows the first run wrote, copied by PostgreSQL into an empty table with
    # the same schema and indexes (made by ucm's migrations), the search, number and key
    # indexes built after the copy, as a fresh ucm import does.
    psql "${PG_ADMIN%/*}/ucm_bench_1" -X -q -c "\copy contacts TO '$WORK/contacts.copy'" \
      -c "\copy contact_numbers TO '$WORK/numbers.copy'"
    for run in $(seq "$RUNS"); do
      url=$(pg_url "ucm_floor_$run")
      "$UCM" -q --db "$url" runs >/dev/null
      psql "$url" -X -q -c "$DROP_SEARCH $DROP_KEYS" >/dev/null
      time_run "$WORK/pgfloor.times" psql "$url" -X -q -1 -c "\copy contacts FROM '$WORK/contacts.copy'" \
        -c "\copy contact_numbers FROM '$WORK/numbers.copy'" \
        -c "$(create_search postgres)" -c "$CREATE_BY_NUMBER" -c "$CREATE_KEYS"
    done
    for run in $(seq "$RUNS"); do
      psql "$PG_ADMIN" -X -q -c "DROP DATABASE ucm_bench_$run" -c "DROP DATABASE ucm_floor_$run" >/dev/null
    done
    rm -f "$WORK/contacts.copy" "$WORK/numbers.copy"
    pf=$(median "$WORK/pgfresh.times" 1); pfl=$(median "$WORK/pgfloor.times" 1); pm=$(median "$WORK/pgfresh.times" 2)
    printf '  PostgreSQL fresh  %7.2f s   PostgreSQL floor (COPY FROM)       %7.2f s   ucm/floor   %s   (peak %d MiB)\n' "$pf" "$pfl" "$(ratio "$pf" "$pfl")" $(( pm / 1024 ))
    if [ "$n" -ge 1000000 ]; then
      check "PostgreSQL fresh import within 2x the PostgreSQL floor" "$(awk -v a="$pf" -v b="$pfl" 'BEGIN {print (a <= 2 * b) ? 1 : 0}')"
    fi
  fi
  if [ "$n" -le 40000 ]; then
    check "fresh import under 0.5 s" "$(awk -v a="$f" 'BEGIN {print (a < 0.5) ? 1 : 0}')"
  fi
done

if [ -n "${PEAK[40000]:-}" ] && [ -n "${PEAK[1000000]:-}" ]; then
  growth=$(( (PEAK[1000000] - PEAK[40000]) * 1024 / 960000 ))
  echo
  echo "== memory growth 40k -> 1M: $growth bytes a contact"
  check "growth at most ~100 bytes a contact" "$(( growth <= 110 ? 1 : 0 ))"
fi
exit $status
