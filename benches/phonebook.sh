#!/usr/bin/env bash
# A Yealink phonebook feed of N contacts (default 100,000) from `ucm serve` on SQLite: the
# time to the first byte and to the last (curl), the feed's size, the 304 answer to a poll
# with the ETag, and the service's peak resident memory before and after serving the feed
# (VmHWM): the feed is streamed, so the peak must not grow with the directory.
#
# Usage: benches/phonebook.sh [CONTACTS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
contacts=${1:-100000}; rounds=${2:-5}
command -v curl >/dev/null || { echo "phonebook.sh: curl is missing" >&2; exit 2; }

cargo build --release --quiet
UCM=$PWD/target/release/ucm
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ucm-phonebook.XXXXXX")
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

db=sqlite://$WORK/ucm.db
"$UCM" -q generate --contacts "$contacts" --directory $(( contacts / 10 )) --seed 7 \
  --xml "$WORK/contacts.xml" --csv "$WORK/directory.csv"
"$UCM" -q --db "$db" directory load "$WORK/directory.csv"
"$UCM" -q --db "$db" import "$WORK/contacts.xml" >/dev/null

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
[[phonebooks]]
pipeline = "bench"
format = "yealink"
numbers = ["work", "mobile", "home"]
allow = ["127.0.0.0/8"]
TOML
UCM_LOG=warn "$UCM" serve --service "$WORK/service.toml" > "$WORK/serve.out" 2> "$WORK/serve.log" &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/serve.out" && break; sleep 0.1; done
base=$(sed -n 's/^ucm serve: listening on //p' "$WORK/serve.out")
[ -n "$base" ] || { echo "phonebook.sh: the service did not start:"; cat "$WORK/serve.log"; exit 1; }
peak() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$server/status"; }

echo "== Yealink feed of $contacts contacts, $rounds rounds (the service and curl on the same machine)"
echo "service peak before: $(peak) MiB"
for i in $(seq "$rounds"); do
  curl -s -o "$WORK/feed.xml" -D "$WORK/head.txt" \
    -w "round $i: first byte %{time_starttransfer} s, last byte %{time_total} s, %{size_download} bytes\n" \
    "$base/phonebook/bench/yealink"
done
etag=$(sed -n 's/^etag: //Ip' "$WORK/head.txt" | tr -d '\r')
curl -s -o /dev/null -H "If-None-Match: $etag" \
  -w "poll with the ETag: HTTP %{http_code} in %{time_total} s\n" "$base/phonebook/bench/yealink"
echo "entries: $(grep -c '<DirectoryEntry>' "$WORK/feed.xml")"
echo "service peak after: $(peak) MiB"
