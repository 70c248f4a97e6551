#!/usr/bin/env bash
# scripts/lint_includes.sh <root> — the include-direction lint.
#
# Dependencies point one way: server → api → models → engine.  For every C/CUDA
# source and header under <root>/{engine,models,api,server,tests,tools}:
#   - a project include ("engine/x.h", or a path relative to the including file)
#     must point at the file's own layer or one below it:
#       engine/ → engine/            models/ → models/, engine/
#       api/    → api/, models/, engine/          server/, tests/, tools/ → anything
#   - CUDA's headers (cuda*.h, cudnn*.h, cublas*.h, curand*.h, cufft*.h, nvrtc.h,
#     cusparse*.h) only under engine/cuda/;
#   - the third-party libraries only from the layers that DESIGN.md gives them:
#     microhttpd.h → server/; jansson.h, utf8proc.h → models/ and up;
#     turbojpeg.h, jpeglib.h, png.h, webp/ → api/ and up.
# tests/ and tools/ may include anything except CUDA headers.  The lint's own
# fixture trees (tests/lint/fixtures/, checked by tests/lint/selftest.sh) are skipped.
# Prints one line per violation (file:line: message) and exits 1 when there is any;
# 0 when clean; 2 on a usage error.
set -euo pipefail

if [[ $# -ne 1 || ! -d "$1" ]]; then
    echo "usage: $0 <source root>" >&2
    exit 2
fi
root=$(cd "$1" && pwd)

# Rank of each layer: a file may include layers of lower or equal rank.
layer_rank() {
    case "$1" in
        engine) echo 0 ;;
        models) echo 1 ;;
        api) echo 2 ;;
        server | tests | tools) echo 3 ;;
        *) echo -1 ;;
    esac
}

# The layer a root-relative path belongs to (its first component), or "".
layer_of() {
    local first=${1%%/*}
    case "$first" in
        engine | models | api | server | tests | tools) echo "$first" ;;
        *) echo "" ;;
    esac
}

# Lowest layer rank that may include third-party header $1; -1 when unrestricted.
external_min_rank() {
    case "$1" in
        microhttpd.h) echo 3 ;;
        jansson.h | utf8proc.h) echo 1 ;;
        turbojpeg.h | jpeglib.h | png.h | webp/*) echo 2 ;;
        *) echo -1 ;;
    esac
}

is_cuda_header() {
    local base=${1##*/}
    case "$base" in
        cuda*.h | cudnn*.h | cublas*.h | curand*.h | cufft*.h | cusparse*.h | nvrtc.h | \
            cuda*.hpp | cuda_runtime | cooperative_groups.h) return 0 ;;
        *) return 1 ;;
    esac
}

# Normalizes a/b/../c/./d to a/c/d (no filesystem access).
normalize() {
    local IFS=/ part out=()
    # shellcheck disable=SC2206 # splitting on / is the point
    local parts=($1)
    for part in "${parts[@]}"; do
        case "$part" in
            '' | .) ;;
            ..) [[ ${#out[@]} -gt 0 ]] && unset 'out[${#out[@]}-1]' ;;
            *) out+=("$part") ;;
        esac
    done
    echo "${out[*]}"
}

violations=0
report() {
    echo "$1" >&2
    violations=$((violations + 1))
}

dirs=()
for d in engine models api server tests tools; do
    [[ -d "$root/$d" ]] && dirs+=("$root/$d")
done
if [[ ${#dirs[@]} -eq 0 ]]; then
    echo "lint_includes: no engine/ models/ api/ server/ tests/ tools/ under $root" >&2
    exit 2
fi

files=0
while IFS= read -r -d '' file; do
    files=$((files + 1))
    rel=${file#"$root"/}
    layer=$(layer_of "$rel")
    rank=$(layer_rank "$layer")
    dir=$(dirname "$rel")
    lineno=0
    while IFS= read -r line || [[ -n "$line" ]]; do
        lineno=$((lineno + 1))
        [[ "$line" =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*([\"\<])([^\"\>]+)[\"\>] ]] || continue
        kind=${BASH_REMATCH[1]}
        inc=${BASH_REMATCH[2]}
        where="$rel:$lineno"

        target=""
        if [[ "$kind" == '"' ]]; then
            if [[ -n "$(layer_of "$inc")" && "$inc" == */* ]]; then
                target=$(normalize "$inc")
            elif [[ "$inc" == ../* || -e "$root/$dir/$inc" ]]; then
                target=$(normalize "$dir/$inc")
            fi
        fi

        if [[ -n "$target" ]]; then
            tlayer=$(layer_of "$target")
            if [[ -z "$tlayer" ]]; then
                continue # outside the layered folders (e.g. a generated header)
            fi
            trank=$(layer_rank "$tlayer")
            if [[ "$tlayer" == tests || "$tlayer" == tools ]] && [[ "$layer" != tests && "$layer" != tools ]]; then
                report "$where: $layer/ includes \"$inc\" from $tlayer/ (only tests/ and tools/ may)"
            elif ((trank > rank)); then
                report "$where: $layer/ includes \"$inc\" from $tlayer/ (dependencies point server → api → models → engine)"
            fi
            continue
        fi

        # A system or third-party header.
        if is_cuda_header "$inc"; then
            if [[ "$rel" != engine/cuda/* ]]; then
                report "$where: CUDA header <$inc> outside engine/cuda/"
            fi
            continue
        fi
        min=$(external_min_rank "$inc")
        if ((min >= 0 && rank < min)); then
            report "$where: $layer/ includes <$inc>, which DESIGN.md reserves for a higher layer"
        fi
    done <"$file"
done < <(find "${dirs[@]}" -path "$root/tests/lint/fixtures" -prune -o -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \
    -o -name '*.cc' -o -name '*.cpp' -o -name '*.hpp' \) -print0 | sort -z)

if ((violations > 0)); then
    echo "lint_includes: $violations violation(s) in $files file(s) under $root" >&2
    exit 1
fi
echo "lint_includes: $files file(s) under $root, include directions OK"
