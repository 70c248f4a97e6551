#!/usr/bin/env bash
# docker/build.sh — the install-and-build steps of both images (docker/Dockerfile,
# docker/Dockerfile.cpu), kept here so that CI runs exactly what the Dockerfiles RUN
# (ctest deploy_build_script, tests/docker/test_build_script.sh).
#
#   docker/build.sh build   --prefix DIR [--cuda ON|OFF] [--build-dir DIR] [--jobs N]
#                           [--model DIR] [--require-model]
#       (defaults: CUDA OFF, build dir $TMPDIR/diffusiond-build, jobs = nproc)
#       Build stage.  Installs the build packages of scripts/packages.txt through
#       scripts/setup.sh (the lines tagged @ci left out), configures and builds the
#       diffusiond binary (Release, no tests) with its data folder at
#       DIR/share/diffusiond (DIFFUSIOND_DATA_DIR, DIFFUSIOND_DEFAULT_MODEL), and installs:
#         DIR/bin/diffusiond
#         DIR/share/diffusiond/                 models/data (the CLIP BPE vocabulary)
#         DIR/share/diffusiond/default-model/   the bundled model (--model, default
#                                               models/default; --require-model makes
#                                               its absence an error)
#         DIR/share/diffusiond/runtime-packages.txt
#       The last is the runtime package set, derived, not listed by hand: the Debian
#       packages that own the shared libraries the binary loads (ldd + dpkg-query -S),
#       plus the lines of scripts/packages.txt tagged @runtime.  Package names differ
#       between Debian 12 and Ubuntu 24.04 (libutf8proc2/3, libpng16-16/-16t64), so
#       a hand-written second list would be wrong on one of them.
#
#   docker/build.sh runtime --prefix DIR
#       Runtime stage.  Installs DIR/share/diffusiond/runtime-packages.txt through
#       scripts/setup.sh and checks that every library of DIR/bin/diffusiond resolves
#       and that it runs.
#
# Environment: those of scripts/setup.sh (DIFFUSIOND_SKIP_INSTALL, ...).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/setup.sh
source "$here/../scripts/setup.sh"

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
    exit 2
}

cmd=${1:-}
[[ "$cmd" == build || "$cmd" == runtime ]] || usage
shift
prefix="" cuda=OFF build_dir="" jobs=$(diffusiond_jobs) require_model=0
model="$DIFFUSIOND_ROOT/models/default"
while [[ $# -gt 0 ]]; do
    case $1 in
        --prefix) prefix=$2; shift 2 ;;
        --cuda) cuda=$2; shift 2 ;;
        --build-dir) build_dir=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --model) model=$2; shift 2 ;;
        --require-model) require_model=1; shift ;;
        *) diffusiond_err "unknown option '$1'"; usage ;;
    esac
done
[[ -n "$prefix" ]] || { diffusiond_err "--prefix is required"; usage; }
[[ "$cuda" == ON || "$cuda" == OFF ]] || { diffusiond_err "--cuda ON|OFF"; usage; }
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
data="$prefix/share/diffusiond"

# The packages owning the shared libraries the binary loads, one a line.
runtime_packages_of() {
    local lib path real pkg
    ldd "$1" | awk '/=> \// { print $3 } /^\t\/.*\(0x/ { print $1 }' | sort -u |
        while read -r lib; do
            real=$(readlink -f "$lib")
            for path in "$lib" "$real" "/usr$lib" "${real#/usr}"; do
                pkg=$(dpkg-query -S "$path" 2>/dev/null | head -n1 | cut -d: -f1) || true
                [[ -n "$pkg" ]] && break
            done
            if [[ -n "$pkg" ]]; then
                echo "$pkg"
            else # e.g. a library of the base image's own, not from a package
                diffusiond_say "runtime packages: no package owns $lib (left to the base image)" >&2
            fi
        done
}

step_build() {
    local bdir=${build_dir:-${TMPDIR:-/tmp}/diffusiond-build}
    DIFFUSIOND_PACKAGES_SKIP=ci diffusiond_install_packages
    diffusiond_say "configure $bdir (Release, CUDA $cuda, data dir $data)"
    cmake -S "$DIFFUSIOND_ROOT" -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
        -DDIFFUSIOND_CUDA="$cuda" -DDIFFUSIOND_SERVER=ON -DDIFFUSIOND_DATA_DIR="$data" \
        -DDIFFUSIOND_DEFAULT_MODEL="$data/default-model"
    cmake --build "$bdir" -j "$jobs" --target diffusiond

    install -D -m 0755 "$bdir/server/diffusiond" "$prefix/bin/diffusiond"
    mkdir -p "$data"
    cp -R "$DIFFUSIOND_ROOT/models/data/." "$data/"
    rm -rf "$data/default-model"
    if [[ -d "$model" ]]; then
        cp -RL "$model" "$data/default-model"
        diffusiond_say "bundled model: $model -> $data/default-model"
    elif [[ $require_model -eq 1 ]]; then
        diffusiond_err "the bundled model $model is missing (--require-model)"
        return 1
    else
        diffusiond_say "bundled model: $model is missing; the install has none"
    fi
    chmod -R a+rX,go-w "$prefix"

    {
        runtime_packages_of "$prefix/bin/diffusiond"
        DIFFUSIOND_PACKAGES_ONLY=runtime diffusiond_packages
    } | sort -u >"$data/runtime-packages.txt"
    diffusiond_say "runtime packages: $(tr '\n' ' ' <"$data/runtime-packages.txt")"
}

step_runtime() {
    local pkgs=()
    [[ -s "$data/runtime-packages.txt" ]] ||
        { diffusiond_err "$data/runtime-packages.txt is missing: run 'build' first"; return 1; }
    mapfile -t pkgs <"$data/runtime-packages.txt"
    diffusiond_install_these "${pkgs[@]}"
    if ldd "$prefix/bin/diffusiond" | grep -q 'not found'; then
        ldd "$prefix/bin/diffusiond" | grep 'not found' >&2
        diffusiond_err "$prefix/bin/diffusiond: libraries not found"
        return 1
    fi
    "$prefix/bin/diffusiond" version
}

"step_$cmd"
