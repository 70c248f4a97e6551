#!/usr/bin/env bash
# tests/gpu/test_adopt_args.sh — tests/gpu/adopt_args.py (which planning choices
# check.sh lets bench_gpu adopt after test_gpu_ops) on made-up ops.json files: no GPU.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

# check NAME EXPECTED FILE: adopt_args.py on FILE prints EXPECTED
check() {
  local name=$1 want=$2 got
  got=$(python3 "$here/adopt_args.py" "$3")
  if [[ $got == "$want" ]]; then
    echo "ok   $name"
  else
    echo "FAIL $name: got '$got', want '$want'"
    fail=1
  fi
}

# expect NAME EXPECTED LINES...: an ops.json of LINES
expect() {
  local name=$1 want=$2
  shift 2
  printf '%s\n' "$@" >"$work/ops.json"
  check "$name" "$want" "$work/ops.json"
}

expect "all passed: adopt freely" "" '{"op":"conv","ok":true}' '{"op":"attention[lean]","ok":true}'
expect "a variant failed: exclude its trials" "--exclude lean_mma,lean_mma_t1" \
  '{"op":"attention_sd_self_d40[lean mma]","dtype":"f16","ok":false}' '{"op":"conv","ok":true}'
expect "two variants" "--exclude gn_fused,lean" \
  '{"op":"a[lean]","ok":false}' '{"op":"b[gn fused]","ok":false}' '{"op":"c","ok":true}'
expect "lean mma with two row tiles: exclude lean_mma" "--exclude lean_mma" \
  '{"op":"attention_d64_ragged_causal[lean mma 2 tiles]","ok":false}'
expect "the kernel before LEAN_MMA: exclude exact2" "--exclude exact2" \
  '{"op":"attention_d64_ragged_causal[exact2]","ok":false}'
expect "im2col: all three thresholds" "--exclude im2col,im2col_2k,im2col_512,unstacked" \
  '{"op":"conv_sd_8x8[im2col]","ok":false}' '{"op":"linear_stack_odd[unstacked]","ok":false}'
expect "the cluster GroupNorm" "--exclude gn_cluster,gn_cluster2,gn_cluster4" '{"op":"group_norm_sd_64x64x320[gn cluster]","ok":false}'
expect "the tiled GroupNorm" "--exclude gn_tile" '{"op":"group_norm_shift_offset_c40[gn tile]","ok":false}'
expect "programmatic dependent launch" "--exclude pdl" '{"op":"cuda_graph_replay[pdl]","ok":false}' '{"op":"conv_sd_8x8[pdl]","ok":false}'
expect "the ways back to cuDNN and the heuristic GEMMs" "--exclude cudnn,heuristic" \
  '{"op":"conv_sd_8x8[cudnn]","ok":false}' '{"op":"linear_odd[heuristic]","ok":false}'
expect "a variant that is no trial blocks nothing" "" '{"op":"a[padded]","ok":false}'
expect "fused convolutions" "--exclude convfuse" '{"op":"conv_sd_64x64x320[convfuse]","dtype":"f16","ok":false}'
expect "a report line is no failure" "" '{"info":"conv_fused_calls","count":12}' '{"op":"conv","ok":true}'
expect "lanes are no plan's concern" "" '{"op":"cuda_lanes","ok":false}'
expect "nor a buffer growing while recording" "" '{"op":"cuda_graph_grow","ok":false}'
expect "a per-case fusion report is no failure" "" \
  '{"info":"conv_fused_case","case":"conv_sd_8x8/f16","count":0}' '{"op":"conv","ok":true}'
expect "the default path failed: adopt nothing" "--no-adopt" \
  '{"op":"a[lean]","ok":false}' '{"op":"group_norm","dtype":"bf16","ok":false}'
expect "a whole-backend check failed" "--no-adopt" '{"op":"cuda_graph_replay","ok":false}'
expect "an unknown tag is treated as the default path" "--no-adopt" '{"op":"a[new]","ok":false}'
expect "unreadable ops.json: adopt nothing" "--no-adopt" 'not json'
check "missing ops.json: adopt nothing" "--no-adopt" "$work/missing.json"

# every plan name adopt_args.py can exclude is a trial of engine/cuda/cuda_plan.c (a
# renamed trial would otherwise never be excluded)
if python3 - "$here/adopt_args.py" "$here/../../engine/cuda/cuda_plan.c" <<'PY'; then
import importlib.util, re, sys
spec = importlib.util.spec_from_file_location("adopt_args", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
src = open(sys.argv[2]).read()
trials = set(re.findall(r'\{"(\w+)", "[^"]*"\}', src[src.index("TRIALS[]"):]))
names = {n for v in mod.TAG_PLAN.values() for n in v.split(",")}
missing = sorted(names - trials)
print("     trials:", ",".join(sorted(trials)))
sys.exit(1 if missing or not trials else 0)
PY
  echo "ok   every excluded name is a trial"
else
  echo "FAIL adopt_args.py names a plan trial cuda_plan.c does not have"
  fail=1
fi
exit $fail
