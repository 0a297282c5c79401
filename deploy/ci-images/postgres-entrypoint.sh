#!/bin/sh
# Entrypoint of the CI stand-in for the official postgres image (deploy/ci-images/postgres.Dockerfile): the part
# of the official entrypoint that docker-compose.yml relies on.
#   POSTGRES_PASSWORD  required: the password of POSTGRES_USER, checked (scram-sha-256) on every TCP connection
#   POSTGRES_USER      the superuser initdb creates (default postgres)
#   POSTGRES_DB        a database created on first start (default: POSTGRES_USER's name)
# Started as root, it hands the data directory to the postgres user and runs again as that user; the cluster is
# made on the first start only (an empty PGDATA), then `postgres` listens on every address.
set -eu

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 0700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres-entrypoint: set POSTGRES_PASSWORD (the database is not initialised yet)" >&2
    exit 1
  fi
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 > /dev/null
  rm -f "$pwfile"
  # Other containers connect over the compose network: password logins from any address.
  echo 'host all all all scram-sha-256' >> "$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE \"$db\"" | postgres --single -D "$PGDATA" postgres > /dev/null
  fi
  echo "postgres-entrypoint: initialised $PGDATA (superuser $user, database $db)" >&2
fi

if [ "${1:-}" = postgres ]; then
  shift
  exec postgres -c listen_addresses='*' "$@"
fi
exec "$@"
