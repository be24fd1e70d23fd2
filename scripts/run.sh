#!/usr/bin/env bash
# The main job: install, migrate, then serve the API and run the workers
# (SQLite and the django-q2 ORM broker unless DATABASE_URL says otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh requirements.txt
scripts/update-translations.sh --compile-only
exec .venv/bin/python manage.py runfacility "$@"
