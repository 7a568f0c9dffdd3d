#!/usr/bin/env bash
# Look at the Prefect UI as a person would: start `opsaudit serve` on a demo company, run the
# cs-monthly deployment, a special audit (a custom run of `special`) and one `opsaudit run` against
# it, and take headless Chromium screenshots of the deployments page, of the finished flow run and
# of the special audit's summary artifact.
#
#   scripts/screenshots.sh [OUT_DIR]     # default docs/; after `make setup`
#
# Installs Debian's chromium when it is missing (apt-get, as root). Everything else lives in a
# temporary folder; what the script starts, it stops.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/.venv/bin}
OUT=$(realpath "${1:-docs}")
WORK=$(mktemp -d -t opsaudit-screenshots-XXXXXX)
PORT=${PORT:-$("$BIN/python" -c 'from opsaudit.flows.server import free_port; print(free_port())')}
UI="http://127.0.0.1:$PORT"
SERVE_PID=

stop_serve() {
    [ -n "$SERVE_PID" ] || return 0
    kill -INT "$SERVE_PID" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$SERVE_PID" 2>/dev/null || return 0; sleep 1; done
    kill -KILL "$SERVE_PID" 2>/dev/null || true
}
trap stop_serve EXIT

command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

screenshot() {  # URL FILE: the page after its scripts have run
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$(mktemp -d -p "$WORK")" --window-size=1400,900 --hide-scrollbars \
        --virtual-time-budget=20000 --screenshot="$2" "$1" 2>>"$WORK/chromium.log"
    echo "$2"
}

export OPSAUDIT_DATABASE_URL="sqlite:///$WORK/ops.db" OPSAUDIT_OUTPUT_DIR="$WORK/out"
export PREFECT_HOME="$WORK/prefect-home" PREFECT_SERVER_ANALYTICS_ENABLED=false
unset PREFECT_API_URL
"$BIN/opsaudit" init --demo

"$BIN/opsaudit" serve --port "$PORT" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
until grep -qs "Ctrl-C" "$WORK/serve.log"; do
    kill -0 "$SERVE_PID" 2>/dev/null || { cat "$WORK/serve.log"; exit 1; }
    sleep 1
done
head -1 "$WORK/serve.log"

export PREFECT_API_URL="$UI/api"
# A run of a served deployment, as the scheduler would start it, and a run started by hand.
FLOW_RUN=$(PREFECT_LOGGING_LEVEL=WARNING "$BIN/python" - <<'EOF'
from prefect.deployments import run_deployment

run = run_deployment("cs-monthly/cs-monthly", timeout=900, poll_interval=2)
print(run.id)
assert run.state.is_completed(), run.state
EOF
)
# A special audit as a custom run from the UI: the id of its summary artifact.
SUMMARY=$(PREFECT_LOGGING_LEVEL=WARNING "$BIN/python" - <<'EOF'
from datetime import datetime, timedelta

from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId
from prefect.deployments import run_deployment

from opsaudit.periods import previous
from opsaudit.settings import load_settings

month = previous("month", datetime.now(load_settings().tz).replace(tzinfo=None))
request = {"areas": ["customer_service"], "departments": ["CS2"], "reason": "在线客服投诉增多",
           "first_day": month.start.date().isoformat(), "last_day": (month.end - timedelta(days=1)).date().isoformat()}
run = run_deployment("special/special", parameters={"request": request}, timeout=900, poll_interval=2)
assert run.state.is_completed(), run.state
with get_client(sync_client=True) as client:
    [summary] = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
                                      artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["special-summary"])))
print(summary.id)
EOF
)
"$BIN/opsaudit" run execution-monthly >/dev/null
echo "flow run $FLOW_RUN completed; special audit summary $SUMMARY"

mkdir -p "$OUT"
screenshot "$UI/deployments" "$OUT/prefect-deployments.png"
screenshot "$UI/runs/flow-run/$FLOW_RUN" "$OUT/prefect-flow-run.png"
screenshot "$UI/artifacts/artifact/$SUMMARY" "$OUT/prefect-artifacts.png"
screenshot "$UI/runs" "$WORK/prefect-runs.png"
echo "work folder: $WORK"
