#!/usr/bin/env bash
# tools/run_full_parity.sh — the full-size parity comparisons in one command.
#
#   bash tools/run_full_parity.sh [--build DIR] [--out DIR] [--no-generate]
#                                 [--sets "sd15-full sd21-full"] [--sd21-size 768|512]
#
# 1. Makes the --full fixture sets that are absent (tools/make_fixtures.py --full
#    --only NAME: SD1.5-size and SD2.1-size random-weight pipelines and diffusers'
#    reference outputs, docs/fixtures.md) in --out (default $DIFFUSIOND_FULL_DIR or
#    /tmp/diffusiond-full).  A set counts as present when the folder's manifest.json
#    lists it (make_fixtures.py writes that entry last).
# 2. Builds the test binaries if needed and runs, with DIFFUSIOND_FULL_DIR set, the
#    C tests that compare against those sets through the production loaders:
#    test_clip (text encoder), test_unet (U-Net cases int/float, batch invariance),
#    test_vae (decode 512x512 and 512x256, encode) and test_pipeline when it is built.
#    Each test's full log goes to <out>/parity-logs/<test>.log; the lines of the
#    full-size comparisons (max abs err, std, err/std, bound, time) are printed.
#
# Environment: PYTHON (default python3: an interpreter with
# tools/requirements-fixtures.txt installed, e.g. /tmp/fxvenv/bin/python).
# Exit status: non-zero when a set could not be made or a test failed.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build"
out=${DIFFUSIOND_FULL_DIR:-/tmp/diffusiond-full}
generate=1
sets="sd15-full sd21-full"
sd21_size=768
python=${PYTHON:-python3}

usage() {
    sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --build) build=$(cd "$2" && pwd) || exit 2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --no-generate) generate=0; shift ;;
        --sets) sets=$2; shift 2 ;;
        --sd21-size) sd21_size=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run_full_parity: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

say() { printf '== %s\n' "$*"; }

# set_present NAME: the manifest in $out lists NAME.
set_present() {
    [[ -f "$out/manifest.json" ]] &&
        "$python" -c 'import json,sys; sys.exit(0 if sys.argv[2] in json.load(open(sys.argv[1])).get("pipelines", {}) else 1)' \
            "$out/manifest.json" "$1" 2>/dev/null
}

# make_set NAME: tools/make_fixtures.py --full --only NAME, timed.
make_set() {
    local name=$1 t0=$SECONDS
    say "making $name in $out (tools/make_fixtures.py --full --only $name)"
    if ! "$python" "$root/tools/make_fixtures.py" --full --only "$name" --out "$out" \
            --sd21-size "$sd21_size"; then
        say "making $name FAILED after $((SECONDS - t0)) s"
        return 1
    fi
    say "made $name in $((SECONDS - t0)) s"
}

status=0
for name in $sets; do
    if set_present "$name"; then
        say "$name present in $out"
    elif [[ $generate == 1 ]]; then
        make_set "$name" || status=1
    else
        say "$name absent in $out (--no-generate): its comparisons will be skipped"
    fi
done

tests=(test_clip test_unet test_vae)
[[ -f "$root/tests/unit/test_pipeline.c" ]] && tests+=(test_pipeline)
say "building ${tests[*]} in $build"
cmake --build "$build" -j "$(nproc)" --target "${tests[@]}" >/dev/null || exit 1

logs="$out/parity-logs"
mkdir -p "$logs"
results=()
for t in "${tests[@]}"; do
    t0=$SECONDS
    say "$t (DIFFUSIOND_FULL_DIR=$out)"
    # Check's per-test timeouts are sized for the tiny sets; the full sets take minutes.
    DIFFUSIOND_FULL_DIR=$out CK_DEFAULT_TIMEOUT=36000 CK_TIMEOUT_MULTIPLIER=100 \
        "$build/tests/$t" >"$logs/$t.log" 2>&1
    rc=$?
    grep -E 'sd15-full|sd21-full' "$logs/$t.log"
    if [[ $rc == 0 ]]; then
        results+=("$t: passed in $((SECONDS - t0)) s")
    else
        results+=("$t: FAILED (exit $rc) after $((SECONDS - t0)) s, see $logs/$t.log")
        grep -E 'FAIL|Error' "$logs/$t.log" | head -5
        status=1
    fi
done

say "summary"
printf '  %s\n' "${results[@]}"
exit $status
