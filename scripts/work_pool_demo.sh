#!/usr/bin/env bash
# The production set-up of README "When one machine is not enough", on one machine: PostgreSQL
# for the operational data, the audit store and Prefect; a Prefect server on it; a process work
# pool with one worker; the deployments of prefect.yaml; one audit run through them.
#
#   scripts/work_pool_demo.sh            # from the repository, after `make setup` and `make postgres`
#
# PG (default postgresql://postgres@127.0.0.1:5432) needs trust or a password in the URL. The script
# recreates two databases there, opsaudit_workpool and opsaudit_prefect, and stops what it started.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/.venv/bin}
PG_HOST=${PG_HOST:-127.0.0.1} PG_PORT=${PG_PORT:-5432} PG_USER=${PG_USER:-postgres}
PG="postgresql+psycopg://$PG_USER@$PG_HOST:$PG_PORT"
PORT=${PORT:-$("$BIN/python" -c 'from opsaudit.flows.server import free_port; print(free_port())')}
WORK=$(mktemp -d -t opsaudit-workpool-XXXXXX)
PIDS=()

stop_all() {
    for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
}
trap stop_all EXIT

step() { printf '\n== %s\n' "$*"; }

step "PostgreSQL databases for the operational data and store, and for Prefect"
for db in opsaudit_workpool opsaudit_prefect; do
    dropdb --if-exists -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$db"
    createdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$db"
done
export OPSAUDIT_DATABASE_URL="$PG/opsaudit_workpool"
export OPSAUDIT_OUTPUT_DIR="$WORK/out"
"$BIN/opsaudit" init --demo

step "A Prefect server backed by PostgreSQL on 127.0.0.1:$PORT"
export PREFECT_HOME="$WORK/prefect-home" PREFECT_SERVER_ANALYTICS_ENABLED=false
PREFECT_API_DATABASE_CONNECTION_URL="postgresql+asyncpg://$PG_USER@$PG_HOST:$PG_PORT/opsaudit_prefect" \
    "$BIN/prefect" server start --host 127.0.0.1 --port "$PORT" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
export PREFECT_API_URL="http://127.0.0.1:$PORT/api"
for _ in $(seq 1 300); do
    curl -fsS "$PREFECT_API_URL/health" >/dev/null 2>&1 && break
    kill -0 "${PIDS[0]}" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
    sleep 1
done
curl -fsS "$PREFECT_API_URL/health" && echo " (health)"

step "A process work pool and the deployments of prefect.yaml"
"$BIN/prefect" work-pool create opsaudit --type process --overwrite
"$BIN/prefect" --no-prompt deploy --all --prefect-file prefect.yaml
"$BIN/prefect" deployment ls

step "One worker (more machines: the same command, with PREFECT_API_URL and OPSAUDIT_* set)"
"$BIN/prefect" worker start --pool opsaudit --limit 2 >"$WORK/worker.log" 2>&1 &
PIDS+=($!)

step "An audit run through the pool: cs-monthly for the last complete month"
"$BIN/prefect" deployment run cs-monthly/cs-monthly --watch --watch-timeout 900

step "What the worker did, and what the store recorded"
grep -E "Submitting flow run|Completed submission|exited with status" "$WORK/worker.log" || tail -20 "$WORK/worker.log"
"$BIN/prefect" flow-run ls --limit 5
psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d opsaudit_workpool -c \
    "SELECT audit, period, status, flow_run_id FROM oa_audit_runs ORDER BY started_at"
psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d opsaudit_prefect -c \
    "SELECT name, state_name FROM flow_run ORDER BY start_time DESC NULLS LAST LIMIT 5"
echo "logs in $WORK"
