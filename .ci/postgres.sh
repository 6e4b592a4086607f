#!/usr/bin/env bash
# Start a throw-away PostgreSQL cluster on 127.0.0.1 for the database tests and print its URL.
#
#   url=$(.ci/postgres.sh)             # installs postgresql from Debian packages when missing
#   RECIST_TEST_POSTGRES_URL=$url make test
#   .ci/postgres.sh --stop             # stop the cluster(s) this script started; remove their dirs
#
# Runs as root (CI): the server itself runs as the `postgres` user in a temporary folder, listens on
# a free loopback port only, trusts local connections (throw-away data, loopback only).
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

find_pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

if [[ "${1:-}" == "--stop" ]]; then
    pgbin=$(find_pgbin)
    for dir in /tmp/recist-pg.*; do
        [[ -d "$dir/data" ]] || continue
        runuser -u postgres -- "$pgbin/pg_ctl" -D "$dir/data" -m fast stop >&2 || true
        rm -rf "$dir"
    done
    exit 0
fi

pgbin=$(find_pgbin || true)
if [[ -z "$pgbin" || ! -x "$pgbin/initdb" ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        log "PostgreSQL is not installed and this is not root: cannot apt-get install"; exit 1
    fi
    log "installing postgresql from Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    # No cluster of the package's own: we start our own below.
    mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
    apt-get install -y -qq --no-install-recommends postgresql >&2
    pgbin=$(find_pgbin)
fi
id postgres >/dev/null 2>&1 || { log "no postgres user after install"; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d /tmp/recist-pg.XXXXXX)
chown postgres "$dir"
as_pg() { runuser -u postgres -- "$@"; }
as_pg "$pgbin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
as_pg "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off" \
    start >&2 || { cat "$dir/server.log" >&2; exit 1; }
as_pg "$pgbin/createdb" -h 127.0.0.1 -p "$port" -U postgres recist_test
log "running in $dir on 127.0.0.1:$port (stop: $0 --stop)"
echo "postgresql://postgres@127.0.0.1:$port/recist_test"
