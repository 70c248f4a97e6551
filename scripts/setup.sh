#!/usr/bin/env bash
# scripts/setup.sh — the set-up shared by scripts/run.sh and scripts/test.sh.
#
#   bash scripts/setup.sh [cmake args…]   install missing packages, build build/
#   source scripts/setup.sh               define the functions below, do nothing
#
# Packages: the list is scripts/packages.txt.  Only the missing ones are installed
# (apt-get update first, then apt-get install), as root or through sudo; what is
# installed is printed.  Set DIFFUSIOND_SKIP_INSTALL=1 to skip this step (e.g. on a
# machine that is not Debian-based and already has the libraries).
#
# Builds: CMake, out of tree, one folder per configuration under the repository root
# (build/ is the Release build), with -j$(nproc).  DIFFUSIOND_CMAKE_ARGS adds
# arguments to every configure (e.g. "-DDIFFUSIOND_CUDA=OFF").

DIFFUSIOND_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DIFFUSIOND_ROOT

diffusiond_say() { printf '==> %s\n' "$*"; }
diffusiond_err() { printf 'error: %s\n' "$*" >&2; }

# The package names of scripts/packages.txt, one a line.  A line may carry tags after
# the name: @ci (only the tests need it, not the build) and @runtime (the runtime
# image installs it under this name).  DIFFUSIOND_PACKAGES_SKIP=ci leaves out the
# lines tagged @ci; DIFFUSIOND_PACKAGES_ONLY=runtime keeps only those tagged @runtime
# (docker/build.sh uses both).
diffusiond_packages() {
    sed -e 's/#.*//' "$DIFFUSIOND_ROOT/scripts/packages.txt" |
        awk -v only="${DIFFUSIOND_PACKAGES_ONLY:-}" -v skip="${DIFFUSIOND_PACKAGES_SKIP:-}" '
            NF && (only == "" || index(" " $0 " ", " @" only " ")) &&
            (skip == "" || !index(" " $0 " ", " @" skip " ")) { print $1 }'
}

# Installs the packages of scripts/packages.txt that are not installed yet.
diffusiond_install_packages() {
    local pkgs=()
    mapfile -t pkgs < <(diffusiond_packages)
    diffusiond_install_these "${pkgs[@]}"
}

# Installs the packages named as arguments that are not installed yet.
diffusiond_install_these() {
    if [[ -n "${DIFFUSIOND_SKIP_INSTALL:-}" ]]; then
        diffusiond_say "packages: skipped (DIFFUSIOND_SKIP_INSTALL is set)"
        return 0
    fi
    local pkgs=("$@") missing=() pkg status
    if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
        diffusiond_say "packages: not a Debian-based system (no dpkg-query/apt-get);" \
            "make sure the equivalents of these are installed: ${pkgs[*]}"
        return 0
    fi
    for pkg in "${pkgs[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        diffusiond_say "packages: all ${#pkgs[@]} installed (${pkgs[*]})"
        return 0
    fi

    local as_root=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            as_root=(sudo)
        else
            diffusiond_err "missing packages (${missing[*]}) and neither root nor sudo;" \
                "install them, or set DIFFUSIOND_SKIP_INSTALL=1"
            return 1
        fi
    fi
    diffusiond_say "packages: installing ${#missing[@]} missing: ${missing[*]}"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
        { diffusiond_err "apt-get update failed"; return 1; }
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}" </dev/null ||
        { diffusiond_err "apt-get install ${missing[*]} failed"; return 1; }
    diffusiond_say "packages: installed ${missing[*]}"
}

diffusiond_jobs() {
    nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2
}

# diffusiond_build <dir> <build type> [cmake args…]: configures <root>/<dir> and builds it.
diffusiond_build() {
    local dir="$DIFFUSIOND_ROOT/$1" type=$2
    shift 2
    local extra=()
    if [[ -n "${DIFFUSIOND_CMAKE_ARGS:-}" ]]; then
        read -r -a extra <<<"$DIFFUSIOND_CMAKE_ARGS"
    fi
    diffusiond_say "configure ${dir#"$DIFFUSIOND_ROOT"/}: $type $* ${extra[*]}"
    if ! cmake -S "$DIFFUSIOND_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$type" "$@" "${extra[@]}"; then
        diffusiond_err "cmake configure of ${dir#"$DIFFUSIOND_ROOT"/} failed"
        return 1
    fi
    diffusiond_say "build ${dir#"$DIFFUSIOND_ROOT"/} with $(diffusiond_jobs) jobs"
    if ! cmake --build "$dir" -j "$(diffusiond_jobs)"; then
        diffusiond_err "build of ${dir#"$DIFFUSIOND_ROOT"/} failed"
        return 1
    fi
}

# What running the service needs: the packages not tagged @ci (the test tools and the
# tests' Python venv are scripts/test.sh's), then the build.
diffusiond_setup() {
    DIFFUSIOND_PACKAGES_SKIP=ci diffusiond_install_packages && diffusiond_build build Release "$@"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    diffusiond_setup "$@"
fi
