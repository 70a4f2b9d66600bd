#!/usr/bin/env bash
# The whole test suite, twice: on SQLite (the embedded default), then on PostgreSQL (production,
# and the only database on which the concurrency promises are proved).
#
#   scripts/test.sh [pytest args...]      (what `make test` runs; args narrow the selection)
#
# Environment:
#   REQUIRE_POSTGRES=1   fail unless the PostgreSQL run happened and its PostgreSQL-only tests ran (CI)
#   PG_TEST_URL          server and base database for the PostgreSQL run
#                        (default postgres://postgres@127.0.0.1:5432/warenhaus; pytest-django
#                        creates and drops test_<name>, one per xdist worker)
#   PYTEST_WORKERS       xdist workers: "auto" (default, one per core) or 0 for a plain serial run
#   SKIP_SQLITE=1 / SKIP_POSTGRES=1   run only one of the two (local convenience)
#
# A run counts only if it passed AND at least one test actually ran: pytest's exit code 5 (no
# tests collected) and an all-skipped run are failures.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV_PY="$ROOT/.venv/bin/python"
RESULTS="$ROOT/test-results"
PG_TEST_URL=${PG_TEST_URL:-postgres://postgres@127.0.0.1:5432/warenhaus}
REQUIRE_POSTGRES=${REQUIRE_POSTGRES:-0}
PYTEST_WORKERS=${PYTEST_WORKERS:-auto}

if [[ ! -x "$VENV_PY" ]]; then
    echo "scripts/test.sh: $VENV_PY is missing; run 'make test' (it sets up the virtualenv)." >&2
    exit 2
fi
mkdir -p "$RESULTS"

xdist_args=()
if [[ "$PYTEST_WORKERS" != "0" ]]; then
    # loadgroup: tests marked xdist_group(name) stay on one worker (the PostgreSQL concurrency
    # proofs open ~60 connections each and must not run side by side).
    xdist_args=(-n "$PYTEST_WORKERS" --dist loadgroup)
fi

banner() {  # banner CHAR LINE...
    local char=$1; shift
    local bar
    bar=$(printf '%*s' 78 '' | tr ' ' "$char")
    echo
    echo "$bar"
    for line in "$@"; do echo "$char$char  $line"; done
    echo "$bar"
    echo
}

# run_suite LABEL REPORT_FLAGS ENV... [-- PYTEST_ARGS...]   runs pytest, then checks the JUnit report
run_suite() {
    local label=$1 check_flags=$2; shift 2
    local report="$RESULTS/$label.xml"
    local envs=() extra=()
    while [[ $# -gt 0 && "$1" != "--" ]]; do envs+=("$1"); shift; done
    [[ "${1:-}" == "--" ]] && shift
    extra=("$@")
    rm -f "$report"
    echo "==> [$label] ${envs[*]}  pytest ${xdist_args[*]} ${extra[*]:-} ${PYTEST_SELECTION[*]:-}"
    local started=$SECONDS
    env "${envs[@]}" "$VENV_PY" -m pytest "${xdist_args[@]}" "${extra[@]}" --junitxml="$report" -o junit_family=xunit2 "${PYTEST_SELECTION[@]}"
    local rc=$?
    echo "==> [$label] pytest exit code $rc after $((SECONDS - started)) s"
    if [[ $rc -eq 5 ]]; then
        echo "[$label] pytest collected NO tests (exit code 5). That is a failure." >&2
        return 5
    fi
    # shellcheck disable=SC2086
    "$VENV_PY" scripts/junit_summary.py "$report" --label "$label" $check_flags
    local verdict=$?
    if [[ $rc -ne 0 ]]; then return $rc; fi
    return $verdict
}

postgres_reachable() {
    "$VENV_PY" - "$PG_TEST_URL" <<'EOF' >/dev/null 2>&1
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg

parts = urlsplit(sys.argv[1])
admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
with psycopg.connect(admin, connect_timeout=3) as conn:
    conn.execute("select 1")
EOF
}

PYTEST_SELECTION=("$@")
full_run=1
[[ $# -gt 0 ]] && full_run=0

sqlite_rc=0
pg_rc=0
pg_state="not run"
pg_skipped=0

if [[ "${SKIP_SQLITE:-0}" != "1" ]]; then
    run_suite sqlite "" -u DATABASE_URL
    sqlite_rc=$?
else
    echo "==> [sqlite] skipped (SKIP_SQLITE=1)"
fi

if [[ "${SKIP_POSTGRES:-0}" == "1" && "$REQUIRE_POSTGRES" != "1" ]]; then
    pg_state="skipped on request (SKIP_POSTGRES=1)"
elif postgres_reachable; then
    pg_flags=""
    if [[ $full_run -eq 1 ]]; then pg_flags="--require-postgres-tests"; fi
    # Two passes: everything else in parallel, then the concurrency proofs alone and serially.
    # Those open ~60 connections each (threads, a gunicorn with 12 threads); sharing the
    # server's 100 connections with another xdist worker's tests made them flaky.
    if [[ $full_run -eq 1 ]]; then
        run_suite postgres "" DATABASE_URL="$PG_TEST_URL" -- -m "not postgres"
        pg_main_rc=$?
        saved_xdist=("${xdist_args[@]}")
        xdist_args=(-n 0)
        run_suite postgres-concurrency "$pg_flags" DATABASE_URL="$PG_TEST_URL" -- -m postgres
        pg_conc_rc=$?
        xdist_args=("${saved_xdist[@]}")
        pg_rc=$(( pg_main_rc != 0 ? pg_main_rc : pg_conc_rc ))
        pg_state="ran (exit $pg_main_rc, concurrency proofs exit $pg_conc_rc)"
    else
        run_suite postgres "" DATABASE_URL="$PG_TEST_URL"
        pg_rc=$?
        pg_state="ran (exit $pg_rc)"
    fi
else
    pg_state="SKIPPED: no PostgreSQL server at $PG_TEST_URL"
    pg_skipped=1
    banner '!' \
        "THE POSTGRESQL RUN WAS SKIPPED" \
        "" \
        "No PostgreSQL server answered at $PG_TEST_URL." \
        "The concurrency promises (no oversell, idempotent checkout) are proved ONLY on" \
        "PostgreSQL; this SQLite-only run does NOT show they hold." \
        "Start it, e.g.: pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start" \
        "(or point PG_TEST_URL at a server) and run 'make test' again."
    if [[ "$REQUIRE_POSTGRES" == "1" ]]; then
        echo "REQUIRE_POSTGRES=1: a missing PostgreSQL run is a failure." >&2
        pg_rc=1
    fi
fi

echo
echo "==> summary: sqlite exit $sqlite_rc; postgres: $pg_state"
if [[ $sqlite_rc -ne 0 || $pg_rc -ne 0 ]]; then
    banner 'X' "TESTS FAILED (sqlite exit $sqlite_rc, postgres exit $pg_rc)" "JUnit reports: $RESULTS/"
    exit 1
fi
if [[ $pg_skipped -eq 1 ]]; then
    banner '!' "SQLite run passed, but THE POSTGRESQL RUN WAS SKIPPED (no server at $PG_TEST_URL)." \
        "The concurrency promises were NOT tested. See the message above."
    exit 0
fi
echo "==> all test runs passed"
