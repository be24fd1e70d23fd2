#!/usr/bin/env bash
# Make sure a local Kubernetes control plane can run here (tests/support/kube.py):
# etcd from Debian (etcd-server) plus kube-apiserver, kube-controller-manager and
# kube-scheduler v1.20.2, built once from Debian bookworm's `kubernetes` source
# package (the full upstream tree with vendor/, so the build needs no network
# beyond apt). No registry this machine reaches ships these binaries; see
# ../shared/notes/containers-and-kubernetes.md §3 for the measurements.
#
# The binaries are cached outside the checkout, in
#   ${FACILITY_KUBE_CACHE:-$HOME/.cache/facility/kube}/v1.20.2/bin
# so the ~6 min build (2 cores) happens once per machine. Idempotent: when the
# cached binaries and etcd are there it does nothing but print the cache path.
#
# Output: the bin folder on stdout (last line). Progress and errors on stderr.
# Exit status: 0 when everything is in place, 1 otherwise. Needs root (or sudo
# without a password) only for apt-get.
set -euo pipefail

version="v1.20.2"
debian_version="1.20.5+really1.20.2-1.1+deb12u1"
src_dir="kubernetes-1.20.5+really1.20.2"
commit="faecb196815e248d3ecfb03c680a4507229c2a56"
cache="${FACILITY_KUBE_CACHE:-$HOME/.cache/facility/kube}"
bin="$cache/$version/bin"
binaries=(kube-apiserver kube-controller-manager kube-scheduler)

say() { echo "ensure-kube: $*" >&2; }

cached() {
    local b
    for b in "${binaries[@]}"; do
        [ -x "$bin/$b" ] || return 1
    done
    "$bin/kube-apiserver" --version 2>/dev/null | grep -q "$version"
}

if [ "$(id -u)" = 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    as_root=(false)
fi

apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        say "missing packages ($*) and there is no apt-get"
        return 1
    fi
    if [ "${as_root[0]:-}" = false ]; then
        say "missing packages ($*) and this is not root (nor passwordless sudo)"
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! "${as_root[@]}" apt-get install -y -qq --no-install-recommends "$@" >&2; then
        # a stale package index makes `install` fail with 404s: refresh it once
        "${as_root[@]}" apt-get update -qq >&2
        "${as_root[@]}" apt-get install -y -qq --no-install-recommends "$@" >&2
    fi
}

if ! command -v etcd >/dev/null 2>&1; then
    say "installing etcd-server from Debian"
    apt_install etcd-server
fi

mkdir -p "$cache"
# Two runs at once (CI and a developer's pytest) must not build twice.
exec 9>"$cache/.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi

if cached; then
    say "cached binaries in $bin"
    echo "$bin"
    exit 0
fi

say "building ${binaries[*]} $version from Debian's source package (about 6 min on 2 cores)"
started=$SECONDS
apt_install golang-go rsync dpkg-dev make golang-github-modern-go-reflect2-dev

work="$(mktemp -d "${TMPDIR:-/tmp}/facility-kube-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# A private apt configuration with deb-src entries, so the host's sources and
# package lists stay as they are.
mkdir -p "$work/apt/sources.list.d" "$work/apt/lists/partial"
for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    sed 's/^Types:.*$/Types: deb-src/' "$f" >"$work/apt/sources.list.d/$(basename "$f")"
done
if [ -f /etc/apt/sources.list ]; then
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"$work/apt/sources.list"
else
    : >"$work/apt/sources.list"
fi
apt_opts=(-o "Dir::Etc::SourceList=$work/apt/sources.list"
          -o "Dir::Etc::SourceParts=$work/apt/sources.list.d"
          -o "Dir::State::Lists=$work/apt/lists"
          -o "APT::Sandbox::User=root")
apt-get "${apt_opts[@]}" update -qq >&2
(cd "$work" && apt-get "${apt_opts[@]}" source -qq --download-only "kubernetes=$debian_version" >&2)
(cd "$work" && dpkg-source -x --no-check ./kubernetes_*.dsc "$src_dir" >/dev/null)

cd "$work/$src_dir"
# k8s 1.20 vendors reflect2 1.0.1, which breaks on Go >= 1.18 (?pretty=true and
# YAML responses panic in UnsafeIterate); Debian's 1.0.2 is API-compatible.
reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
rm -rf vendor/github.com/modern-go/reflect2/*
cp "$reflect2"/*.go "$reflect2"/*.s vendor/github.com/modern-go/reflect2/
mkdir -p .go/src/k8s.io
ln -sfn ../../.. .go/src/k8s.io/kubernetes
export GOPATH="$PWD/.go" CGO_ENABLED=0 GOFLAGS=-mod=vendor GOPROXY=off GOCACHE="$work/gocache" HOME="$work"
export KUBE_GIT_VERSION="$version" KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT="$commit"
if ! make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler" >"$work/make.log" 2>&1; then
    tail -n 30 "$work/make.log" >&2
    say "build failed"
    exit 1
fi
mkdir -p "$bin.partial"
for b in "${binaries[@]}"; do
    cp "_output/bin/$b" "$bin.partial/"
done
# Publish the folder whole, so an interrupted build never looks cached.
rm -rf "$bin"
mv "$bin.partial" "$bin"
cached || { say "built binaries do not report $version"; exit 1; }
say "built in $((SECONDS - started))s; cached in $bin"
echo "$bin"
