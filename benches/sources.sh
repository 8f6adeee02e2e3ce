#!/usr/bin/env bash
# The LDAP and CardDAV sources against their own clients, in the same run:
#   1. LDAP: a real OpenLDAP slapd on 127.0.0.1 holding LDAP_ENTRIES inetOrgPerson entries
#      (default 100,000; size limit 500, paging past it allowed, as tests/common/slapd.rs sets
#      it up). `ucm fetch` (bind, paged search 500 at a time, the staged LDIF written and read
#      through the mapping) against `ldapsearch -E pr=500/noprompt` of the same attributes
#      writing to /dev/null: the floor. Then `ucm run` (fetch and merge into SQLite) for
#      scale, and an unchanged `ucm fetch` (same content: nothing staged).
#   2. CardDAV: a real Radicale on 127.0.0.1 with basic auth, address books of 1,000 and
#      10,000 cards: `ucm fetch` of the whole book into an empty workspace (full read), then
#      after 10 cards changed over HTTP (incremental: sync-collection, multiget of the 10),
#      then unchanged (the sync-token only). Beside them, curl as the floor: one
#      addressbook-query REPORT of every card (what a full read must at least transfer), and
#      one PROPFIND of the sync-token (what any unchanged check costs the server).
# RUNS runs each (default 5: the machine is shared and noisy), medians; GNU time's peak memory.
# Target: ucm fetch within 1.5x ldapsearch's time (exit 1 when missed).
#
# Needs: cargo, slapd and ldap-utils (Debian), python3 with radicale (pip), curl, GNU time.
# Usage: benches/sources.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
ENTRIES=${LDAP_ENTRIES:-100000}
for tool in /usr/sbin/slapd /usr/sbin/slapadd ldapsearch curl /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "sources.sh: $tool is missing (apt-get install slapd ldap-utils curl time)" >&2; exit 2; }
done
python3 -c 'import radicale' 2>/dev/null || { echo "sources.sh: radicale is missing (pip install radicale)" >&2; exit 2; }

cargo build --release --quiet
UCM=$PWD/target/release/ucm
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ucm-sources.XXXXXX")
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# timed OUT CMD...: runs CMD under GNU time, appends "seconds peak_kb" to OUT.
timed() {
  local out=$1; shift
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/stderr.txt" || {
    echo "sources.sh: failed: $*" >&2; cat "$WORK/stderr.txt" >&2; exit 2; }
  cat "$WORK/time.txt" >> "$out"
}
col() { awk -v c="$2" '{print $c}' "$1" | median; }
wait_port() { for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "sources.sh: nothing listens on $1" >&2; exit 2; }
status=0

# ---- LDAP ----
BASE=dc=example,dc=com
mkdir -p "$WORK/slapd/db"
cat > "$WORK/slapd/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $WORK/slapd/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 4294967296
suffix "$BASE"
rootdn "cn=admin,$BASE"
rootpw admin-secret
directory $WORK/slapd/db
limits users size.soft=500 size.hard=500 size.prtotal=unlimited
access to attrs=userPassword by anonymous auth by * none
access to * by * read
EOF
{
  printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n' "$BASE"
  printf 'dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n' "$BASE"
  printf 'dn: cn=ucm,%s\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: ucm\nsn: service\nuserPassword: ucm-secret\n\n' "$BASE"
  awk -v n="$ENTRIES" -v base="$BASE" 'BEGIN {
    split("Sales Support Finance Operations", dep, " "); split("Gent Antwerpen Brussel Liège", city, " ")
    for (i = 0; i < n; i++) {
      printf "dn: uid=p%d,ou=people,%s\nobjectClass: inetOrgPerson\nuid: p%d\ncn: Person %d\n", i, base, i, i
      printf "sn: Number%d\ngivenName: Person\nmail: p%d@example.com\ntelephoneNumber: %d\n", i, i, 100000 + i
      printf "mobile: +32 47%d %06d\ndepartmentNumber: %s\nl: %s\nroomNumber: %d\n\n", i % 10, i, dep[i % 4 + 1], city[i % 4 + 1], i % 900
    }
  }'
} > "$WORK/slapd/data.ldif"
/usr/sbin/slapadd -q -f "$WORK/slapd/slapd.conf" -l "$WORK/slapd/data.ldif"
LDAP_PORT=$(free_port)
/usr/sbin/slapd -f "$WORK/slapd/slapd.conf" -h "ldap://127.0.0.1:$LDAP_PORT/" -d 0 2>"$WORK/slapd/log" &
PIDS+=($!)
wait_port "$LDAP_PORT"
ldap_config() {
  printf '[source]\nkind = "ldap"\nurl = "ldap://127.0.0.1:%s"\nread_timeout_secs = 120\n[source.ldap]\nbase_dn = "ou=people,%s"\nbind_dn = "cn=ucm,%s"\npassword = "ucm-secret"\npage_size = 500\n[database]\nurl = "sqlite://%s"\n' \
    "$LDAP_PORT" "$BASE" "$BASE" "$1"
}
# The attributes ucm asks for (the inetorgperson preset's), for ldapsearch too.
ATTRS="departmentNumber facsimileTelephoneNumber givenName homePhone l mail mobile o ou roomNumber sn telephoneNumber title"
for run in $(seq "$RUNS"); do
  ldap_config "$WORK/ldap-$run.db" > "$WORK/ldap.toml"
  rm -rf "$WORK/ldap-data"; mkdir -p "$WORK/ldap-data"
  (cd "$WORK/ldap-data" && timed "$WORK/ucm-fetch.times" "$UCM" -q -c "$WORK/ldap.toml" fetch)
  # shellcheck disable=SC2086
  timed "$WORK/ldapsearch.times" ldapsearch -x -LLL -H "ldap://127.0.0.1:$LDAP_PORT" -D "cn=ucm,$BASE" -w ucm-secret \
    -b "ou=people,$BASE" -E pr=500/noprompt "(objectClass=inetOrgPerson)" $ATTRS
  (cd "$WORK/ldap-data" && timed "$WORK/ucm-again.times" "$UCM" -q -c "$WORK/ldap.toml" fetch)
  rm -f "$WORK/ldap-$run.db"*
  rm -rf "$WORK/ldap-data"; mkdir -p "$WORK/ldap-data"
  (cd "$WORK/ldap-data" && timed "$WORK/ucm-run.times" "$UCM" -q -c "$WORK/ldap.toml" run)
  rm -f "$WORK/ldap-$run.db"*
done
f=$(col "$WORK/ucm-fetch.times" 1); l=$(col "$WORK/ldapsearch.times" 1)
a=$(col "$WORK/ucm-again.times" 1); r=$(col "$WORK/ucm-run.times" 1)
fm=$(col "$WORK/ucm-fetch.times" 2); rm_=$(col "$WORK/ucm-run.times" 2)
ratio=$(awk -v a="$f" -v b="$l" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')
echo "== LDAP: $ENTRIES entries from slapd, pages of 500, median of $RUNS runs"
printf '  ucm fetch         %7.2f s (%d MiB)   ldapsearch -E pr=500/noprompt > /dev/null  %7.2f s   ucm/ldapsearch %s\n' "$f" $(( fm / 1024 )) "$l" "$ratio"
printf '  ucm fetch again   %7.2f s   (unchanged: same content)\n' "$a"
printf '  ucm run           %7.2f s (%d MiB)   (fetch and merge into SQLite)\n' "$r" $(( rm_ / 1024 ))
if awk -v r="$ratio" 'BEGIN {exit !(r <= 1.5)}'; then
  printf '  %-60s ok\n' "ucm fetch within 1.5x ldapsearch"
else
  printf '  %-60s MISSED\n' "ucm fetch within 1.5x ldapsearch"; status=1
fi
kill "${PIDS[0]}"

# ---- CardDAV ----
card() {  # card I MOBILE
  printf 'BEGIN:VCARD\r\nVERSION:3.0\r\nUID:card-%s\r\nFN:Card %s\r\nN:Number%s;Card;;;\r\nEMAIL;TYPE=INTERNET:card%s@example.com\r\nTEL;TYPE=CELL:%s\r\nORG:Example NV;Sales\r\nEND:VCARD\r\n' "$1" "$1" "$1" "$1" "$2"
}
QUERY_ALL='<?xml version="1.0" encoding="utf-8"?><c:addressbook-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav"><d:prop><d:getetag/><c:address-data/></d:prop></c:addressbook-query>'
QUERY_TOKEN='<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:"><d:prop><d:sync-token/></d:prop></d:propfind>'
for cards in 1000 10000; do
  dir=$WORK/radicale-$cards
  book=$dir/collections/collection-root/bench/contacts
  mkdir -p "$book"
  printf '{"D:displayname": "Contacts", "tag": "VADDRESSBOOK"}' > "$book/.Radicale.props"
  for i in $(seq 0 $((cards - 1))); do card "$i" "+32 476 $(printf %06d "$i")" > "$book/card-$i.vcf"; done
  printf 'bench:bench-secret\n' > "$dir/users"
  port=$(free_port)
  printf '[server]\nhosts = 127.0.0.1:%s\n[auth]\ntype = htpasswd\nhtpasswd_filename = %s\nhtpasswd_encryption = plain\n[storage]\nfilesystem_folder = %s\n[rights]\ntype = owner_only\n[logging]\nlevel = warning\n' \
    "$port" "$dir/users" "$dir/collections" > "$dir/config"
  python3 -m radicale --config "$dir/config" 2>"$dir/log" &
  PIDS+=($!)
  wait_port "$port"
  url=http://127.0.0.1:$port/bench/contacts/
  printf '[source]\nkind = "carddav"\nurl = "%s"\nread_timeout_secs = 120\n[source.auth]\nusername = "bench"\npassword = "bench-secret"\n[database]\nurl = "sqlite://%s/ucm.db"\n' \
    "$url" "$dir" > "$dir/ucm.toml"
  # A first read builds Radicale's own caches: not counted.
  (cd "$dir" && "$UCM" -q -c "$dir/ucm.toml" fetch >/dev/null)
  rm -f "$WORK"/dav-*.times
  for run in $(seq "$RUNS"); do
    rm -rf "$dir/ucm-data" "$dir/ucm.db"*
    (cd "$dir" && timed "$WORK/dav-full.times" "$UCM" -q -c "$dir/ucm.toml" fetch)
    for k in $(seq 0 9); do
      i=$(( (run * 10 + k) % cards ))
      # A file, not a pipe: curl would send a pipe chunked, which Radicale's server does not read.
      card "$i" "+32 499 $(printf %02d "$run") $(printf %04d "$k")" > "$WORK/card.vcf"
      curl -s -f -o /dev/null -u bench:bench-secret -T "$WORK/card.vcf" -H 'Content-Type: text/vcard' "${url}card-$i.vcf"
    done
    (cd "$dir" && timed "$WORK/dav-incremental.times" "$UCM" -q -c "$dir/ucm.toml" fetch)
    # The incremental fetch staged the 10 new numbers (or the bench measured nothing).
    grep -q "+32 499 $(printf %02d "$run") 0009" "$dir"/ucm-data/*/*/source-*.vcf || {
      echo "sources.sh: the incremental fetch did not stage the changed cards" >&2; exit 2; }
    (cd "$dir" && timed "$WORK/dav-unchanged.times" "$UCM" -q -c "$dir/ucm.toml" fetch)
    timed "$WORK/dav-curl-all.times" curl -s -f -o /dev/null -u bench:bench-secret -X REPORT -H 'Depth: 1' \
      -H 'Content-Type: application/xml' --data "$QUERY_ALL" "$url"
    timed "$WORK/dav-curl-token.times" curl -s -f -o /dev/null -u bench:bench-secret -X PROPFIND -H 'Depth: 0' \
      -H 'Content-Type: application/xml' --data "$QUERY_TOKEN" "$url"
  done
  echo "== CardDAV: $cards cards from Radicale, median of $RUNS runs"
  printf '  ucm fetch, full read          %7.2f s (%d MiB)   curl REPORT of every card     %7.2f s\n' \
    "$(col "$WORK/dav-full.times" 1)" $(( $(col "$WORK/dav-full.times" 2) / 1024 )) "$(col "$WORK/dav-curl-all.times" 1)"
  printf '  ucm fetch, 10 cards changed   %7.2f s\n' "$(col "$WORK/dav-incremental.times" 1)"
  printf '  ucm fetch, unchanged          %7.2f s              curl PROPFIND of the sync-token %5.2f s\n' \
    "$(col "$WORK/dav-unchanged.times" 1)" "$(col "$WORK/dav-curl-token.times" 1)"
  kill "${PIDS[-1]}"
done
exit $status
