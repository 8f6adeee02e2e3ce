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

. benches/service_bench.sh
bench_begin phonebook
bench_load "$contacts" 7 "sqlite://$WORK/ucm.db"
cat > "$WORK/service.toml" <<TOML
listen = "127.0.0.1:0"
pipelines = ["$WORK/bench.toml"]
[[phonebooks]]
pipeline = "bench"
format = "yealink"
numbers = ["work", "mobile", "home"]
allow = ["127.0.0.0/8"]
TOML
bench_serve phonebook.sh

echo "== Yealink feed of $contacts contacts, $rounds rounds (the service and curl on the same machine)"
echo "service peak before: $(bench_peak) MiB"
for i in $(seq "$rounds"); do
  curl -s -o "$WORK/feed.xml" -D "$WORK/head.txt" \
    -w "round $i: first byte %{time_starttransfer} s, last byte %{time_total} s, %{size_download} bytes\n" \
    "$base/phonebook/bench/yealink"
done
etag=$(sed -n 's/^etag: //Ip' "$WORK/head.txt" | tr -d '\r')
curl -s -o /dev/null -H "If-None-Match: $etag" \
  -w "poll with the ETag: HTTP %{http_code} in %{time_total} s\n" "$base/phonebook/bench/yealink"
echo "entries: $(grep -c '<DirectoryEntry>' "$WORK/feed.xml")"
echo "service peak after: $(bench_peak) MiB"
