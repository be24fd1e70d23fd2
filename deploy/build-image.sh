#!/usr/bin/env bash
# Build the facility's container image with no registry (docs/deployment.md).
#
#   deploy/build-image.sh [TAG]        (default tag: facility/facility:<version>)
#
# 1. the base: scripts/build-base-image.sh facility (Debian bookworm from
#    mmdebstrap + a venv with requirements.txt; built once, then loaded from
#    .cache/images/ or kept in the engine);
# 2. the source, staged from git's file list (tracked and untracked-but-not-
#    ignored files: no .venv, var/, caches), without tests/ and bench/;
# 3. `docker build -f deploy/Dockerfile` on that staging folder. The image is
#    also tagged facility/facility:src-<hash of the staged source>, and a
#    build whose tag is already present is skipped (seconds).
#
# Prints the image reference on stdout. Ship it with
#   docker save facility/facility:0.1.0 | gzip > facility-image.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."

version="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)"
tag="${1:-facility/facility:${version:-latest}}"

base="$(scripts/build-base-image.sh facility | tail -n1)"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' path; do
            case "$path" in
            tests/* | bench/* | .ci/* | deploy/*) continue ;;
            esac
            [ -f "$path" ] && printf '%s\0' "$path"
        done | tar --null -T - -cf - | tar -C "$stage" -xf -
else
    tar --exclude=./.venv --exclude=./.cache --exclude=./var --exclude=./.git \
        --exclude=./tests --exclude=./bench --exclude='__pycache__' -cf - . | tar -C "$stage" -xf -
fi
cp deploy/Dockerfile "$stage/.Dockerfile"
printf ".Dockerfile\n.dockerignore\n" >"$stage/.dockerignore"

# The content hash: the staged files plus the base they go on.
src_hash="$( (cd "$stage" && find . -type f -print0 | sort -z | xargs -0 sha256sum; echo "$base") |
    sha256sum | cut -c1-12)"
src_tag="${tag%:*}:src-$src_hash"

if docker image inspect "$src_tag" >/dev/null 2>&1; then
    echo "build-image: $src_tag already present" >&2
else
    echo "build-image: building $tag from $base" >&2
    start=$SECONDS
    docker build --quiet --force-rm --build-arg "BASE=$base" -f "$stage/.Dockerfile" \
        -t "$src_tag" "$stage" >/dev/null
    echo "build-image: built $src_tag in $((SECONDS - start)) s" >&2
    # earlier source builds of this repository name are superseded
    docker images --format '{{.Repository}}:{{.Tag}}' "${tag%:*}" |
        grep -F ":src-" | grep -vxF "$src_tag" | xargs -r docker rmi >/dev/null 2>&1 || true
fi
docker tag "$src_tag" "$tag"
echo "$tag"
