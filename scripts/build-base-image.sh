#!/usr/bin/env bash
# Build the facility's base images with no registry: a Debian root file system
# made by mmdebstrap, streamed into `docker import`.
#
#   scripts/build-base-image.sh [base|engine|facility]...      (default: base)
#
#   base      facility/base-python:bookworm   python3 only (tests; ~35 s cold)
#   engine    facility/engine-python:bookworm python3 + numpy + PyAV + OpenCV
#             from Debian (the reference engine; ~100 s cold, ~1 GB)
#   facility  facility/facility-base:bookworm-<requirements hash>
#             python3 from Debian + a venv at /opt/facility/venv holding
#             requirements.txt, installed offline from wheels that pip builds
#             on this host first (.cache/wheels/<hash>; the host's pip
#             settings and CA bundle apply there, so nothing inside the image
#             reaches an index). The base of deploy/Dockerfile
#             (deploy/build-image.sh); ~2 min cold, ~600 MB. A new
#             requirements.txt makes a new tag.
#
# Cache: an image already in the engine is kept as it is. Each built image is
# also saved to ${FACILITY_CACHE_DIR:-.cache}/images/<name>.tar and loaded from
# there when the engine lacks it (a restarted or fresh dockerd, or a machine
# that kept the cache), which takes seconds instead of a rebuild.
# FACILITY_DEBIAN_MIRROR overrides the mirror (default http://deb.debian.org).
# Prints the image reference(s) built or found on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

cache_dir="${FACILITY_CACHE_DIR:-.cache}/images"
mirror="${FACILITY_DEBIAN_MIRROR:-http://deb.debian.org}"
suite=bookworm

image_ref() {
    case "$1" in
    base) echo "facility/base-python:$suite" ;;
    engine) echo "facility/engine-python:$suite" ;;
    facility) echo "facility/facility-base:$suite-$(requirements_hash)" ;;
    *) echo "build-base-image: unknown target '$1' (base, engine, facility)" >&2; return 2 ;;
    esac
}

packages() {
    case "$1" in
    base) echo "python3,ca-certificates" ;;
    engine) echo "python3,ca-certificates,python3-numpy,python3-av,python3-opencv" ;;
    facility) echo "python3,python3-venv,ca-certificates" ;;
    esac
}

# --- the facility target: requirements.txt in a venv, installed offline ------
requirements_hash() {
    sha256sum requirements.txt | cut -c1-12
}

# Wheels of requirements.txt for the image's CPython (3.11, bookworm, this
# architecture), built by the host's pip (its index, mirror and CA settings).
prepare_wheels() {
    local dir="${FACILITY_CACHE_DIR:-.cache}/wheels/$(requirements_hash)"
    if [ ! -s "$dir/requirements.txt" ]; then
        local python="${FACILITY_WHEEL_PYTHON:-}"
        if [ -z "$python" ]; then
            if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
        fi
        case "$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" in
        3.11) ;;
        *) echo "build-base-image: $python is not CPython 3.11 (bookworm's); set FACILITY_WHEEL_PYTHON" >&2; return 2 ;;
        esac
        echo "build-base-image: building wheels of requirements.txt into $dir" >&2
        rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
        "$python" -m pip wheel --quiet -r requirements.txt -w "$dir.tmp" >&2
        cp requirements.txt "$dir.tmp/requirements.txt"
        rm -rf "$dir" && mv "$dir.tmp" "$dir"
    fi
    (cd "$dir" && pwd)
}

# mmdebstrap hooks that make /opt/facility/venv from the wheels (root mode:
# the hooks chroot into the new root file system; no network is used).
extra_args() {
    case "$1" in
    facility)
        local wheels
        wheels="$(prepare_wheels)"
        local clean_env="env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root"
        printf '%s\n' \
            "--customize-hook=mkdir -p \"\$1/tmp/wheels\" && cp -a $wheels/. \"\$1/tmp/wheels/\"" \
            "--customize-hook=chroot \"\$1\" $clean_env python3 -m venv /opt/facility/venv" \
            "--customize-hook=chroot \"\$1\" $clean_env /opt/facility/venv/bin/pip install --quiet --no-cache-dir --no-index --find-links /tmp/wheels -r /tmp/wheels/requirements.txt" \
            "--customize-hook=rm -rf \"\$1/tmp/wheels\"" \
            "--customize-hook=find \"\$1/opt/facility/venv\" -name __pycache__ -prune -exec rm -rf {} +"
        ;;
    esac
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

ensure_mmdebstrap() {
    command -v mmdebstrap >/dev/null 2>&1 && return 0
    echo "build-base-image: installing mmdebstrap" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq mmdebstrap >/dev/null
}

build() {
    local target="$1" ref tar
    ref="$(image_ref "$target")"
    tar="$cache_dir/${ref//[\/:]/_}.tar"
    if have_image "$ref"; then
        echo "build-base-image: $ref already present" >&2
    elif [ -s "$tar" ] && docker load -i "$tar" >&2 && have_image "$ref"; then
        echo "build-base-image: $ref loaded from $tar" >&2
    else
        ensure_mmdebstrap
        echo "build-base-image: building $ref (mmdebstrap $suite: $(packages "$target"))" >&2
        local start=$SECONDS
        local -a extra=()
        local line
        while IFS= read -r line; do
            [ -n "$line" ] && extra+=("$line")
        done < <(extra_args "$target")
        [ "$target" != facility ] || [ "${#extra[@]}" -gt 0 ] || return 1
        # pipefail matters: when mmdebstrap fails, docker import still makes an
        # empty image and exits 0.
        mmdebstrap --variant=minbase --quiet \
            --include="$(packages "$target")" \
            --aptopt='Acquire::Check-Valid-Until "false"' \
            --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            --dpkgopt='path-exclude=/usr/share/info/*' \
            ${extra[@]+"${extra[@]}"} \
            "$suite" - \
            "deb $mirror/debian $suite main" \
            "deb $mirror/debian $suite-updates main" \
            "deb $mirror/debian-security $suite-security main" |
            docker import \
                -c 'ENV PYTHONUNBUFFERED=1 LANG=C.UTF-8' \
                -c 'CMD ["/usr/bin/python3"]' \
                -m "facility $target image: mmdebstrap $suite" \
                - "$ref" >/dev/null
        # A sanity check that the image is not the empty one a failed stream makes.
        docker run --rm --network none "$ref" python3 -c 'import sys; sys.exit(0)'
        echo "build-base-image: built $ref in $((SECONDS - start)) s" >&2
        mkdir -p "$cache_dir"
        docker save -o "$tar.tmp" "$ref" && mv "$tar.tmp" "$tar"
        echo "build-base-image: cached in $tar" >&2
    fi
    echo "$ref"
}

[ "$#" -gt 0 ] || set -- base
for target in "$@"; do
    image_ref "$target" >/dev/null
done
for target in "$@"; do
    build "$target"
done
