#!/usr/bin/env bash
# Run a command against throwaway PostgreSQL and Redis servers from Debian's packages:
#   scripts/with-postgres-redis.sh .venv/bin/pytest
# Installs the packages when missing, starts both on loopback-only ports in a temp dir,
# exports DATABASE_URL and CACHE_URL, runs the command, and stops both servers.
set -euo pipefail

PG_PORT=${PG_PORT:-54329}
REDIS_PORT=${REDIS_PORT:-63799}

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v redis-server >/dev/null; then
  echo "Installing Debian's postgresql and redis-server…"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null
fi
PG_BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")

work=$(mktemp -d)
chmod 755 "$work"
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" = 0 ]; then chown postgres "$work"; fi

cleanup() {
  as_postgres "$PG_BIN/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

as_postgres "$PG_BIN/initdb" -D "$work/pg" -U dealdesk --auth=trust >/dev/null
as_postgres "$PG_BIN/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-h 127.0.0.1 -p $PG_PORT -k $work -c fsync=off -c full_page_writes=off" start >/dev/null
as_postgres "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U dealdesk dealdesk

redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
  --daemonize yes --dir "$work" --logfile "$work/redis.log"
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

export DATABASE_URL="postgres://dealdesk@127.0.0.1:$PG_PORT/dealdesk"
export CACHE_URL="redis://127.0.0.1:$REDIS_PORT/0"
echo "PostgreSQL at $DATABASE_URL, Redis at $CACHE_URL"
"$@"
