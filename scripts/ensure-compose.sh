#!/usr/bin/env bash
# Make sure `docker-compose` runs on this machine (CI and developer hosts),
# for tests/deploy/test_compose.py and the compose walk-through of
# docs/deployment.md. Idempotent: when `docker-compose version` already works
# it does nothing; otherwise it installs Debian's docker-compose (1.29.2 on
# bookworm; the compose v2 plugin is in no Debian release) without the
# recommended docker.io, since the engine comes from scripts/ensure-docker.sh.
#
# Exit status: 0 when docker-compose runs, 1 otherwise (with the reason on
# stderr). Needs root to install.
set -euo pipefail

if docker-compose version >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "ensure-compose: docker-compose is missing and this is not root, so it cannot be installed" >&2
    exit 1
fi
echo "ensure-compose: installing docker-compose from Debian" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
if ! docker-compose version >/dev/null 2>&1; then
    echo "ensure-compose: docker-compose was installed but does not run:" >&2
    docker-compose version >&2 || true
    exit 1
fi
echo "ensure-compose: $(docker-compose version --short 2>/dev/null || echo installed)" >&2
