#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine (CI and developer hosts).
# Idempotent: when `docker info` already works it does nothing. Otherwise it
# installs Debian's docker.io (when dockerd is missing), starts dockerd in the
# background with its log in $FACILITY_DOCKERD_LOG, and waits until the
# engine answers (at most $FACILITY_DOCKERD_WAIT_S seconds, default 60).
#
# Exit status: 0 when the engine answers, 1 otherwise (with the reason on
# stderr). Needs root to install or start dockerd.
set -euo pipefail

log="${FACILITY_DOCKERD_LOG:-/var/log/facility-dockerd.log}"
wait_s="${FACILITY_DOCKERD_WAIT_S:-60}"

# The docker CLI on PATH may be newer than Debian's daemon (20.10, API 1.41):
# a newer client refuses an older daemon unless told which API to speak.
docker_cli() {
    if command -v docker >/dev/null 2>&1; then
        docker "$@"
    elif [ -x /usr/bin/docker ]; then
        /usr/bin/docker "$@"
    else
        return 127
    fi
}

engine_answers() {
    docker_cli info >/dev/null 2>&1 && return 0
    # Retry once with the daemon's own API version, if the socket is there.
    if [ -z "${DOCKER_API_VERSION:-}" ] && [ -S /var/run/docker.sock ] && command -v curl >/dev/null 2>&1; then
        local v
        v="$(curl -s --max-time 3 --unix-socket /var/run/docker.sock http://localhost/version \
            | sed -n 's/.*"ApiVersion":"\([0-9.]*\)".*/\1/p')"
        if [ -n "$v" ] && DOCKER_API_VERSION="$v" docker_cli info >/dev/null 2>&1; then
            echo "ensure-docker: the engine speaks API $v; export DOCKER_API_VERSION=$v for the docker CLI" >&2
            return 0
        fi
    fi
    return 1
}

if engine_answers; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "ensure-docker: no Docker engine answers and this is not root, so dockerd cannot be started" >&2
    exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
    echo "ensure-docker: installing docker.io from Debian" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io >/dev/null
fi

dockerd_running() {
    local pid
    pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = dockerd ]
}

if ! dockerd_running; then
    echo "ensure-docker: starting dockerd (log: $log)" >&2
    mkdir -p "$(dirname "$log")"
    # setsid: dockerd outlives this script and the shell that ran it.
    setsid dockerd >>"$log" 2>&1 </dev/null &
fi

deadline=$((SECONDS + wait_s))
while [ "$SECONDS" -lt "$deadline" ]; do
    if engine_answers; then
        echo "ensure-docker: engine ready" >&2
        exit 0
    fi
    sleep 0.5
done
echo "ensure-docker: last lines of $log:" >&2
tail -n 20 "$log" >&2 || true
echo "ensure-docker: no Docker engine answered within ${wait_s}s" \
    "at ${DOCKER_HOST:-unix:///var/run/docker.sock} (dockerd log: $log)" >&2
exit 1
