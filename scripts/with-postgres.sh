#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL cluster (system binaries, temp dir, trust auth on loopback).
# Exports TEST_DATABASE_URL for the command and always stops and removes the cluster afterwards.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  echo "PostgreSQL binaries not found: installing the Debian package" >&2
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGPORT=${AUDIAPRO_TEST_PGPORT:-55432}
PGDIR=$(mktemp -d /tmp/audiapro-pg.XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres: "$PGDIR"
cleanup() {
  as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$PGDIR"
}
trap cleanup EXIT
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust >/dev/null
# Default durability (fsync on) so benchmarks are honest; max_connections covers parallel workers.
as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/data/server.log" -w \
  -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
export TEST_DATABASE_URL="postgresql+psycopg2://postgres@127.0.0.1:$PGPORT/postgres"
echo "postgres ready: $TEST_DATABASE_URL" >&2
"$@"
