#!/bin/sh
# First start: a cluster in the (empty) volume, open to the compose network with trust
# auth (development only). Then PostgreSQL in the foreground.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    initdb --username=postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 "$PGDATA" >/dev/null
    echo "host all all all trust" >> "$PGDATA/pg_hba.conf"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
