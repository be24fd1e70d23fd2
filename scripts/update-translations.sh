#!/usr/bin/env bash
# Refresh the message catalogues from the code (then translate the new
# entries of locale/zh_Hans/LC_MESSAGES/django.po) and compile them.
# usage: scripts/update-translations.sh [--compile-only]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v msgfmt >/dev/null || apt-get install -y -q gettext >/dev/null
py=.venv/bin/python
# strings that are not the facility's own: the engine ships alone; tests; tools
ignore=(--ignore ".venv/*" --ignore ".cache/*" --ignore "tests/*" --ignore "algorithms/reference/*"
        --ignore "var/*" --ignore "bench/*" --ignore "deploy/*")
if [ "${1:-}" != "--compile-only" ]; then
  "$py" manage.py makemessages -l zh_Hans -l en "${ignore[@]}"
fi
"$py" manage.py compilemessages --ignore ".venv/*" --ignore ".cache/*" >/dev/null
