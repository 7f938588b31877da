#!/bin/sh
# The generation statements of creditgate under pgbench (docs/scaling.md, "Past one database"), beside pgbench's
# own TPC-B-like transaction as the machine's yardstick, on a throwaway database of PGBENCH_SERVER:
#   bench/pgbench/run.sh                       # postgresql://postgres@127.0.0.1:5432/postgres
#   CLIENTS="1 8 32" SECONDS_EACH=30 USERS=1 SCRIPTS=generation bench/pgbench/run.sh   # all on one wallet
#   SYNC="on off" bench/pgbench/run.sh       # also with synchronous_commit=off: the CPU's bound without the flush
# Needs pgbench and psql on PATH (Debian: postgresql-client) and the project's .venv (for `creditgate migrate`).
# Prints one line per run: script, users, clients, synchronous_commit, generations (or transactions) per second,
# mean latency in ms.
set -eu
SERVER=${PGBENCH_SERVER:-postgresql://postgres@127.0.0.1:5432/postgres}
CLIENTS=${CLIENTS:-1 2 4 8 16 32}
SECONDS_EACH=${SECONDS_EACH:-20}
USERS=${USERS:-1000}
SYNC=${SYNC:-on}
SCRIPTS=${SCRIPTS:-generation tpcb-like}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$(dirname "$HERE")")
NAME=cg_pgbench_$$
URL=${SERVER%/*}/$NAME

psql -q "$SERVER" -c "CREATE DATABASE $NAME"
trap 'psql -q "$SERVER" -c "DROP DATABASE IF EXISTS $NAME WITH (FORCE)"' EXIT
DATABASE_URL=$URL LOCAL_MODEL=off "$ROOT/.venv/bin/creditgate" migrate >/dev/null 2>&1
psql -q "$URL" -v users="$USERS" -f "$HERE/seed.sql"
pgbench -q -i -s 10 "$URL" >/dev/null 2>&1

run() {  # script-label pgbench-args...
    label=$1; shift
    for sync in $SYNC; do
        for clients in $CLIENTS; do
            out=$(PGOPTIONS="-c synchronous_commit=$sync" pgbench -n -M prepared -c "$clients" -j 2 \
                -T "$SECONDS_EACH" "$@" "$URL" 2>&1)
            tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
            latency=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
            echo "$label users=$USERS clients=$clients synchronous_commit=$sync per_second=$tps latency_ms=$latency"
        done
    done
}

for script in $SCRIPTS; do
    case $script in
        generation) run generation -D users="$USERS" -f "$HERE/generation.sql" ;;
        tpcb-like) run tpcb-like -b tpcb-like ;;
    esac
done
