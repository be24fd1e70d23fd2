#!/usr/bin/env bash
# The whole test suite and the checks CI makes. Runs on PostgreSQL when
# DATABASE_URL points at one, on SQLite otherwise. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh requirements-dev.txt
py=.venv/bin/python
export DJANGO_SETTINGS_MODULE=facility.settings

scripts/update-translations.sh --compile-only
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy facility algorithms compute services tasks
echo "== django checks"
"$py" manage.py check --fail-level WARNING
"$py" manage.py makemigrations --check --dry-run
echo "== OpenAPI schema"
schema="$(mktemp --suffix=.yaml)"
"$py" manage.py spectacular --validate --fail-on-warn --file "$schema"
rm -f "$schema"
echo "== tests on ${DATABASE_URL:-SQLite}"
# exit status 5 = no test selected (e.g. a -k filter that only matches one part)
run_pytest() { .venv/bin/pytest "$@" || { rc=$?; [ "$rc" -eq 5 ] || exit "$rc"; }; }
run_pytest -m "not faults" "$@"
echo "== fault injection (kills and restarts parts of a running facility)"
run_pytest -m faults tests/faults "$@"
