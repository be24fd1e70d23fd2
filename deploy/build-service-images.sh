#!/usr/bin/env bash
# Build the PostgreSQL and Redis images of deploy/compose.yaml with no
# registry: Debian bookworm's postgresql-15 and redis-server packages on the
# base root file system of scripts/build-base-image.sh (mmdebstrap).
#
#   deploy/build-service-images.sh [postgres|redis]...     (default: both)
#
#   postgres  facility/postgres:15-bookworm   deploy/images/postgres/
#   redis     facility/redis:7-bookworm       deploy/images/redis/
#
# Each image is also tagged facility/<name>:bookworm-<hash> (its folder's
# files and the base image's ID), kept in the engine, and saved to
# ${FACILITY_CACHE_DIR:-.cache}/images/; a build whose hash tag is present,
# or whose tar is there to `docker load`, is skipped (seconds). The packages
# come from FACILITY_DEBIAN_MIRROR like the base (the build uses the host's
# network, as mmdebstrap does). Prints the image references on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

cache_dir="${FACILITY_CACHE_DIR:-.cache}/images"

tag_of() {
    case "$1" in
    postgres) echo "facility/postgres:15-bookworm" ;;
    redis) echo "facility/redis:7-bookworm" ;;
    *) echo "build-service-images: unknown image '$1' (postgres, redis)" >&2; return 2 ;;
    esac
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

build() {
    local name="$1" base="$2" tag dir hash ref tar
    tag="$(tag_of "$name")"
    dir="deploy/images/$name"
    hash="$( (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum
        docker image inspect -f '{{.Id}}' "$base") | sha256sum | cut -c1-12)"
    ref="${tag%:*}:bookworm-$hash"
    tar="$cache_dir/${ref//[\/:]/_}.tar"
    if have_image "$ref"; then
        echo "build-service-images: $ref already present" >&2
    elif [ -s "$tar" ] && docker load -i "$tar" >/dev/null && have_image "$ref"; then
        echo "build-service-images: $ref loaded from $tar" >&2
    else
        echo "build-service-images: building $ref on $base" >&2
        local start=$SECONDS
        docker build --quiet --force-rm --network host --build-arg "BASE=$base" \
            -t "$ref" "$dir" >/dev/null
        echo "build-service-images: built $ref in $((SECONDS - start)) s" >&2
        mkdir -p "$cache_dir"
        # older builds of this image are superseded, in the engine and the cache
        rm -f "$cache_dir/$(echo "${tag%:*}" | tr '/:' '__')"_bookworm-*.tar
        docker save -o "$tar.tmp" "$ref" && mv "$tar.tmp" "$tar"
        docker images --format '{{.Repository}}:{{.Tag}}' "${tag%:*}" |
            grep -F ":bookworm-" | grep -vxF "$ref" | xargs -r docker rmi >/dev/null 2>&1 || true
    fi
    docker tag "$ref" "$tag"
    echo "$tag"
}

[ "$#" -gt 0 ] || set -- postgres redis
for name in "$@"; do
    tag_of "$name" >/dev/null
done
base="$(scripts/build-base-image.sh base | tail -n1)"
for name in "$@"; do
    build "$name" "$base"
done
