#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, plus lint, types and import contracts.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# Docker and the registry need root: a non-root user runs the whole script through sudo.
[ "$(id -u)" -eq 0 ] || exec sudo -E "$0" "$@"
"$here/scripts/setup.sh"
venv="$here/.venv/bin"
cd "$here"
"$venv/ruff" check .
"$venv/mypy"
"$venv/lint-imports" --no-cache >/dev/null
set +e
"$venv/python" -m pytest -q "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "test.sh: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$code"
