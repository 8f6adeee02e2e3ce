#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: its own data directory in a temporary folder,
# its own port on 127.0.0.1, trust authentication for local connections, no fsync.
#
#   scripts/postgres.sh start DIR   initdb + start in DIR; prints the admin URL on stdout
#                                   (as root, DIR's parent must be traversable by postgres)
#   scripts/postgres.sh stop DIR    stops the server and removes DIR
#
# Needs initdb, pg_ctl and postgres on the PATH (PostgreSQL 15 here). PostgreSQL refuses to
# run as root: as root the server runs as the `postgres` user (created when missing).
set -euo pipefail

command=${1:?usage: scripts/postgres.sh start|stop DIR}
dir=${2:?usage: scripts/postgres.sh start|stop DIR}

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case $command in
  start)
    for tool in initdb pg_ctl postgres; do
      command -v "$tool" >/dev/null || { echo "scripts/postgres.sh: $tool is missing (install PostgreSQL 15)" >&2; exit 1; }
    done
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
      useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    fi
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
    # A free port: ask the kernel for one.
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner initdb --pgdata="$dir/data" --username=postgres --auth=trust --encoding=UTF8 \
      --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner pg_ctl --pgdata="$dir/data" --log="$dir/server.log" --wait --timeout=60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' \
          -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      as_owner pg_ctl --pgdata="$dir/data" --mode=immediate --wait stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: scripts/postgres.sh start|stop DIR" >&2
    exit 2
    ;;
esac
