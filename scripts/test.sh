#!/usr/bin/env bash
# scripts/test.sh — the README's second command: install what is missing, build, and
# run the whole suite through ctest, in every configuration the project promises:
#
#   main      build/           Release, DIFFUSIOND_CUDA=AUTO (on when nvcc is found:
#                              CUDA code is compiled and linked; its tests skip
#                              device work when there is no GPU)           → ctest
#   asan      build-asan/      RelWithDebInfo, DIFFUSIOND_SANITIZE=address,undefined,
#                              CUDA off (ASan and the CUDA driver do not mix) → ctest
#   noserver  build-noserver/  DIFFUSIOND_SERVER=OFF (engine + models + tests +
#                              bench, none of the HTTP/image libraries)    → ctest
#   cuda-on   build/           reconfigured with DIFFUSIOND_CUDA=ON and rebuilt:
#                              proves the forced option configures and links;
#                              skipped, with a message, when nvcc is absent
#
# Every step runs even when an earlier one failed; the exit status is non-zero when
# any failed, and the last line sums up.  Environment:
#   DIFFUSIOND_TEST_STEPS  steps to run, default "main asan noserver cuda-on"
#   DIFFUSIOND_CTEST_JOBS  ctest parallelism (default 1: some tests time themselves)
#   DIFFUSIOND_CTEST_ARGS  extra ctest arguments, e.g. "-R test_half"
#   plus those of scripts/setup.sh (DIFFUSIOND_SKIP_INSTALL, DIFFUSIOND_CMAKE_ARGS).
set -uo pipefail
# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

started=$SECONDS
steps=${DIFFUSIOND_TEST_STEPS:-main asan noserver cuda-on}
summary=()
failed=()

# Whether CMake's DIFFUSIOND_CUDA=AUTO will find a CUDA compiler: $CUDACXX, nvcc on
# the PATH, or /usr/local/cuda/bin/nvcc — one that runs (a wrapper or symlink left
# behind by a removed toolkit does not count).
nvcc_present() {
    local nvcc
    for nvcc in "${CUDACXX:-}" "$(command -v nvcc 2>/dev/null)" /usr/local/cuda/bin/nvcc; do
        [[ -n "$nvcc" && -x "$nvcc" ]] && "$nvcc" --version >/dev/null 2>&1 && return 0
    done
    return 1
}

run_ctest() {
    local dir="$DIFFUSIOND_ROOT/$1" extra=()
    shift
    if [[ -n "${DIFFUSIOND_CTEST_ARGS:-}" ]]; then
        read -r -a extra <<<"$DIFFUSIOND_CTEST_ARGS"
    fi
    diffusiond_say "ctest in ${dir#"$DIFFUSIOND_ROOT"/}"
    ctest --test-dir "$dir" --output-on-failure --no-tests=error \
        -j "${DIFFUSIOND_CTEST_JOBS:-1}" "$@" "${extra[@]}"
}

# Checks that the binary in <dir> was or was not built with CUDA, as expected.
check_cuda_built() {
    local dir=$1 want=$2 line
    line=$("$DIFFUSIOND_ROOT/$dir/server/diffusiond" version | grep '^cuda backend:') || {
        diffusiond_err "$dir/server/diffusiond version failed"
        return 1
    }
    diffusiond_say "$dir: $line"
    if [[ "$want" == built && "$line" != "cuda backend: built"* ]] ||
        [[ "$want" == "not built" && "$line" != "cuda backend: not built" ]]; then
        diffusiond_err "$dir: expected 'cuda backend: $want'"
        return 1
    fi
}

step_main() {
    diffusiond_build build Release -DDIFFUSIOND_CUDA=AUTO || return 1
    if nvcc_present; then
        check_cuda_built build built || return 1
    else
        check_cuda_built build "not built" || return 1
    fi
    run_ctest build
}

step_asan() {
    diffusiond_build build-asan RelWithDebInfo -DDIFFUSIOND_SANITIZE=address,undefined \
        -DDIFFUSIOND_CUDA=OFF || return 1
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        run_ctest build-asan
}

step_noserver() {
    diffusiond_build build-noserver Release -DDIFFUSIOND_SERVER=OFF || return 1
    run_ctest build-noserver
}

step_cuda_on() {
    if ! nvcc_present; then
        diffusiond_say "cuda-on: skipped, no CUDA compiler (nvcc) on this machine"
        return 3
    fi
    diffusiond_build build Release -DDIFFUSIOND_CUDA=ON || return 1
    check_cuda_built build built
}

if ! diffusiond_install_packages || ! bash "$DIFFUSIOND_ROOT/scripts/pyenv.sh"; then # + tests/http venv
    echo "test.sh: FAILED (packages) in $((SECONDS - started))s"
    exit 1
fi

for step in $steps; do
    fn="step_${step//-/_}"
    if ! declare -F "$fn" >/dev/null; then
        diffusiond_err "unknown step '$step' (have: main asan noserver cuda-on)"
        failed+=("$step")
        continue
    fi
    t0=$SECONDS
    diffusiond_say "step $step"
    "$fn"
    rc=$?
    dt=$((SECONDS - t0))
    case $rc in
        0) summary+=("$step: ok (${dt}s)") ;;
        3) summary+=("$step: skipped") ;;
        *)
            summary+=("$step: FAIL (${dt}s)")
            failed+=("$step")
            ;;
    esac
done

total=$((SECONDS - started))
echo
for line in "${summary[@]}"; do
    diffusiond_say "$line"
done
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "test.sh: FAILED (${failed[*]}) in $((total / 60))m$((total % 60))s"
    exit 1
fi
echo "test.sh: PASSED (${summary[*]}) in $((total / 60))m$((total % 60))s"
