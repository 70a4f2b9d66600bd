#!/usr/bin/env bash
# The style and architecture gates, run by `make lint` and before the suites by `make test`:
#   ruff format --check   the formatter has nothing to change (line length 100)
#   ruff check            lint rules of pyproject.toml ([tool.ruff.lint])
#   lint-imports          the import contracts of pyproject.toml ([tool.importlinter])
# Each runs even when an earlier one failed, so one run shows every finding; any failure fails.
set -uo pipefail

cd "$(dirname "$0")/.."
BIN="$(pwd)/.venv/bin"
if [[ ! -x "$BIN/ruff" || ! -x "$BIN/lint-imports" ]]; then
    echo "scripts/lint.sh: ruff or lint-imports missing in .venv; run 'make lint'." >&2
    exit 2
fi

failed=()
gate() {  # gate NAME COMMAND...
    local name=$1; shift
    echo "==> [lint] $name"
    if ! "$@"; then failed+=("$name"); fi
}
gate "ruff format --check" "$BIN/ruff" format --check --quiet .
gate "ruff check" "$BIN/ruff" check --quiet .
gate "lint-imports" "$BIN/lint-imports" --no-cache
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "==> [lint] FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "==> [lint] all gates passed"
