#!/bin/sh
# First start (empty PGDATA): initdb with POSTGRES_USER as the superuser and
# POSTGRES_PASSWORD (scram-sha-256 for every TCP connection), then create
# POSTGRES_DB. Later starts use the data as it is. `postgres ARGS` runs the
# server on PGDATA with ARGS; any other command runs as given.
set -eu
if [ "${1:-postgres}" != postgres ]; then
    exec "$@"
fi
[ "$#" -gt 0 ] && shift

user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "postgres-entrypoint: set POSTGRES_PASSWORD (the database refuses TCP logins without one)" >&2
        exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    # initdb only allows the loopback addresses; the server's listen_addresses
    # decides who can reach it at all, and every TCP login needs the password.
    printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    # a private server on the socket only, to create the database
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    if [ "$db" != postgres ]; then
        psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres \
            -c "CREATE DATABASE \"$db\"" >/dev/null
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "postgres-entrypoint: initialised $PGDATA (user $user, database $db)" >&2
fi
exec postgres -D "$PGDATA" "$@"
