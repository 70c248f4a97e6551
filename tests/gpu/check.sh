#!/usr/bin/env bash
# tests/gpu/check.sh — the one script for a machine with an NVIDIA GPU (no network, no
# Debian -dev packages; CUDA, PyTorch and cuDNN in Python's nvidia packages).  Needs
# .gpu-deps/ from tests/gpu/prepare.sh (run beforehand on a machine with network).
#
#   1 env        what the machine has (GPU, driver, nvcc, torch, cuDNN wheel)
#   2 deps       unpacks .gpu-deps/prefix.tar.xz (jansson, utf8proc, OpenBLAS, pkgconf)
#   3 build      engine + models + tests/gpu + benchmark + diffusiond, BUILD_TESTING=OFF
#                (no Check), sm_90 (CHECK_CUDA_ARCH to change); with the server
#                (DIFFUSIOND_SERVER=ON) when the prefix has its libraries, and again
#                without it if that build fails; meanwhile tools/make_random_sd15.py
#                writes the random SD1.5 folder
#   4 ops        tests/gpu/test_gpu_ops: every op, CUDA vs CPU, f32/f16/bf16
#   5 pipeline   tests/gpu/test_gpu_pipeline: sd1-tiny, sd2-tiny, CUDA vs CPU PSNR
#   6 bench      tests/gpu/bench_gpu on the random SD1.5 (fp16, 512²), with a per-op
#                profile of a U-Net step at 2 and 16 rows (CHECK_PROFILE shapes each);
#                it times each planning choice (engine/cuda/cuda_plan.h) against the
#                base (CHECK_PLAN, default: the backend's defaults), adopts the faster
#                ones for its later parts and records the plan in bench.json
#   7 diffusers  tools/bench_diffusers_gpu.py on the same folder and card
#   8 load       `diffusiond bench load --device cuda` on the bundled model
#                (models/default): goodput of the three batching modes under Poisson
#                arrivals on the GPU (the scheduler issue's benchmark), through the real
#                server over HTTP when `serve` was built and starts (its libraries load),
#                else the scheduler in process (--in-process); with bench.json's plan;
#                every request in load-trace.csv; CHECK_SKIP_LOAD=1 leaves it out,
#                CHECK_LOAD_MODEL=sd15 runs it on the random SD1.5 at 512² and 768²
#                Step mode runs with `--lanes 2` (two sizes side by side on two
#                streams; serve's default is 1 until measured; CHECK_LANES overrides)
#   8b load1     when ≥ 70 s are left: step mode alone again with `--lanes 1` (one
#                bucket per iteration, the default) into load-lanes1.json — what
#                lanes change
#   9 sanitizer  only when an op failed and time is left: its case under compute-sanitizer
#  10 summary    summary.json: stage results, the figures, ratios and the issue's goals
#
# CHECK_STAGES (default "ops pipeline bench diffusers load load1") names the stages 4–8b
# to run; env, deps, build and summary always run.  A second run of a session can spend
# the budget on the scheduler alone: CHECK_STAGES="load load1" CHECK_PLAN=<the first
# run's adopted plan>, the load stage then given up to the whole budget left (not 200 s)
# and CHECK_LOAD_ARGS (default "--min-requests 60 --refine 2") for more requests a rate.
#
# Results and the log go to $OUT (the device tool's output folder; default
# out/gpu-check).  Every stage runs under `timeout`, its limit cut to what is left of
# CHECK_BUDGET_S (default 450 s), so the whole run ends inside 8 minutes even if one
# stage hangs.  Exit status: 0 when ops and pipeline pass, else 1.
#
# From a session with a GPU:  run(command="CHECK_BUDGET_S=430 bash tests/gpu/check.sh",
#                                 carry=[".gpu-deps"], timeout_s=480)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/out/gpu-check}
WORK=${CHECK_WORK:-/tmp/diffusiond-gpu}
TOTAL=${CHECK_BUDGET_S:-450}
ARCH=${CHECK_CUDA_ARCH:-90}
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/check.log") 2>&1
START=$(date +%s)
STAGES_JSON=""

left() { echo $((TOTAL - ($(date +%s) - START))); }
STAGES=" ${CHECK_STAGES:-ops pipeline bench diffusers load load1} "
# wanted STAGE: whether CHECK_STAGES names it
wanted() { [[ $STAGES == *" $1 "* ]]; }

# run_stage NAME MAX_SECONDS CMD...: runs CMD under a timeout of at most MAX_SECONDS and
# at most what is left of the budget (less a reserve for the summary).
run_stage() {
  local name=$1 max=$2 t rc s
  shift 2
  t=$(($(left) - 20))
  ((t > max)) && t=$max
  if ((t < 5)); then
    echo "=== $name: skipped, the ${TOTAL}s budget is spent"
    STAGES_JSON+="{\"stage\":\"$name\",\"rc\":-1,\"seconds\":0,\"skipped\":true},"
    return 124
  fi
  echo "=== $name (limit ${t}s, $(left)s left) ==="
  s=$(date +%s)
  timeout -k 5 "$t" "$@"
  rc=$?
  echo "=== $name: rc $rc in $(($(date +%s) - s))s ==="
  STAGES_JSON+="{\"stage\":\"$name\",\"rc\":$rc,\"seconds\":$(($(date +%s) - s))},"
  return $rc
}

stage_env() {
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
  echo "nvcc: $(command -v nvcc || echo none) $(echo /usr/local/cuda*/bin/nvcc)"
  "${NVCC:-nvcc}" --version 2>/dev/null | tail -2
  echo "cmake: $(cmake --version | head -1), ninja: $(command -v ninja || echo none), cc: $(cc --version | head -1)"
  python3 - <<'PY'
import importlib, os
for m in ("torch", "transformers", "huggingface_hub", "safetensors"):
    try:
        print(m, importlib.import_module(m).__version__)
    except Exception as e:
        print(m, "missing:", e)
try:
    import nvidia
    for p in nvidia.__path__:
        print("nvidia wheels:", p, sorted(os.listdir(p)))
except Exception as e:
    print("nvidia wheels: none", e)
PY
}

stage_deps() {
  local deps=$WORK/deps
  rm -rf "$deps" && mkdir -p "$deps" || return 1
  tar -C "$deps" -xJf "$ROOT/.gpu-deps/prefix.tar.xz" || return 1
  find "$deps" -name '*.pc' -exec sed -i "s|=/usr|=$deps/usr|g" {} + || return 1
  mkdir -p "$WORK/bin"
  if ! command -v pkg-config >/dev/null; then
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$deps/usr/lib/x86_64-linux-gnu" \
      "$deps/usr/bin/pkgconf" >"$WORK/bin/pkg-config"
    chmod +x "$WORK/bin/pkg-config"
  fi
  PATH=$WORK/bin:$PATH PKG_CONFIG_PATH=$deps/usr/lib/x86_64-linux-gnu/pkgconfig:$deps/usr/lib/x86_64-linux-gnu/openblas-pthread/pkgconfig \
    pkg-config --modversion jansson libutf8proc openblas
}

# Library folders of Python's nvidia wheels (cuDNN, cuBLAS) for the loader.
nvidia_lib_dirs() {
  python3 -c "
import nvidia, os
print(':'.join(os.path.join(p, d, 'lib') for p in nvidia.__path__ for d in sorted(os.listdir(p))
               if os.path.isdir(os.path.join(p, d, 'lib'))))" 2>/dev/null
}

stage_build() {
  local gen=() nvcc_arg=() server=OFF
  command -v ninja >/dev/null && gen=(-G Ninja)
  local nvcc_path
  nvcc_path=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
  [[ -n $nvcc_path ]] && nvcc_arg=(-DCMAKE_CUDA_COMPILER="$nvcc_path")
  pkg-config --exists libmicrohttpd libpng libturbojpeg libwebp && server=ON
  build_with() {
    cmake -S "$ROOT" -B "$WORK/build" "${gen[@]}" "${nvcc_arg[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DDIFFUSIOND_CUDA=ON -DDIFFUSIOND_SERVER="$1" -DBUILD_TESTING=OFF \
      -DCMAKE_CUDA_ARCHITECTURES="$ARCH" &&
      cmake --build "$WORK/build" -j"$(nproc)" --target test_gpu_ops test_gpu_pipeline \
        bench_gpu diffusiond
  }
  build_with "$server" && return 0
  [[ $server == ON ]] || return 1
  echo "build: with the server it failed; again without it (the load stage then runs in process)"
  build_with OFF
}

stage_model() {
  [[ -f $WORK/sd15/unet/diffusion_pytorch_model.safetensors ]] && return 0
  # shellcheck disable=SC2086 # CHECK_MODEL_ARGS=--small: a quick dry run without a GPU
  python3 "$ROOT/tools/make_random_sd15.py" "$WORK/sd15.tmp" --dtype fp16 ${CHECK_MODEL_ARGS:-} &&
    rm -rf "$WORK/sd15" && mv "$WORK/sd15.tmp" "$WORK/sd15"
}

# --- run ------------------------------------------------------------------------------
echo "diffusiond GPU check, $(date -u +%FT%TZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), budget ${TOTAL}s"
run_stage env 60 bash -c "$(declare -f stage_env); stage_env"
run_stage deps 60 bash -c "ROOT='$ROOT' WORK='$WORK'; $(declare -f stage_deps); stage_deps"
export PATH=$WORK/bin:$PATH
export PKG_CONFIG_PATH=$WORK/deps/usr/lib/x86_64-linux-gnu/pkgconfig:$WORK/deps/usr/lib/x86_64-linux-gnu/openblas-pthread/pkgconfig
NV_LIBS=$(nvidia_lib_dirs)
export LD_LIBRARY_PATH=$WORK/deps/usr/lib/x86_64-linux-gnu:$WORK/deps/usr/lib/x86_64-linux-gnu/openblas-pthread:$NV_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OPENBLAS_NUM_THREADS=1
# diffusers (+ importlib_metadata) for the random model and the side-by-side benchmark
mkdir -p "$WORK/site"
timeout 60 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "$WORK/site" "$ROOT"/.gpu-deps/wheels/*.whl || echo "pip install of the wheels failed"
export PYTHONPATH=$WORK/site${PYTHONPATH:+:$PYTHONPATH}

# the random model is written while the build runs (both mostly on the CPU); only the
# bench and diffusers stages (and CHECK_LOAD_MODEL=sd15) use it
NEED_MODEL=0
{ wanted bench || wanted diffusers || [[ ${CHECK_LOAD_MODEL:-} == sd15 ]]; } && NEED_MODEL=1
( ((NEED_MODEL)) || exit 0; run_stage model 200 bash -c "ROOT='$ROOT' WORK='$WORK' CHECK_MODEL_ARGS='${CHECK_MODEL_ARGS:-}'; $(declare -f stage_model); stage_model" \
    >"$WORK/model.log" 2>&1 ) &
MODEL_PID=$!
run_stage build 240 bash -c "ROOT='$ROOT' WORK='$WORK' ARCH='$ARCH'; $(declare -f stage_build); stage_build"
BUILD_RC=$?
B=$WORK/build/tests/gpu
OPS_RC=1
PIPE_RC=1
if ((BUILD_RC == 0)); then
  if wanted ops; then
    run_stage ops 120 "$B/test_gpu_ops" "$OUT/ops.json"
    OPS_RC=$?
  else
    OPS_RC=0 && echo "=== ops: not in CHECK_STAGES"
  fi
  if wanted pipeline; then
    run_stage pipeline 120 "$B/test_gpu_pipeline" "$ROOT" "$OUT/pipeline.json"
    PIPE_RC=$?
  else
    PIPE_RC=0 && echo "=== pipeline: not in CHECK_STAGES"
  fi
fi
wait "$MODEL_PID"
((NEED_MODEL)) && cat "$WORK/model.log" &&
  STAGES_JSON+="{\"stage\":\"model\",\"rc\":$([[ -f $WORK/sd15/model_index.json ]] && echo 0 || echo 1)},"
HAVE_GPU=0
nvidia-smi -L >/dev/null 2>&1 && HAVE_GPU=1
if ((HAVE_GPU && BUILD_RC == 0)) && wanted bench && [[ -f $WORK/sd15/model_index.json ]]; then
  b=$(($(left) - 150))
  ((b > 150)) && b=150
  ((b < 10)) && b=10
  # a choice is adopted only when its conformance cases passed, and none at all when
  # the default path failed or the suite did not finish (a faster but wrong kernel
  # must not become the figures' plan): tests/gpu/adopt_args.py
  adopt=()
  if ((OPS_RC == 1)); then # it finished, and some cases failed
    read -r -a adopt <<<"$(python3 "$ROOT/tests/gpu/adopt_args.py" "$OUT/ops.json")"
    ((${#adopt[@]} == 0)) && adopt=(--no-adopt)
  elif ((OPS_RC != 0)); then # a crash or a timeout
    adopt=(--no-adopt)
  fi
  echo "bench: adoption ${adopt[*]:-of every faster choice}"
  run_stage bench "$((b + 40))" "$B/bench_gpu" --model "$WORK/sd15" --dtype f16 --size 512 \
    --repeat 10 --steps 20 --batches 1,4,8,16 --budget "$b" --json "$OUT/bench.json" \
    --profile "${CHECK_PROFILE:-25}" --plan "${CHECK_PLAN:-default}" "${adopt[@]}"
fi
if ((HAVE_GPU)) && wanted diffusers &&
  [[ -f $WORK/sd15/model_index.json && -z ${CHECK_SKIP_DIFFUSERS:-} ]]; then
  b=$(($(left) - 40))
  ((b > 120)) && b=120
  ((b < 10)) && b=10
  PYTHONUNBUFFERED=1 run_stage diffusers \
    "$((b + 30))" python3 "$ROOT/tools/bench_diffusers_gpu.py" --model "$WORK/sd15" \
    --dtype fp16 --size 512 --repeat 10 --steps 20 --batches 1,4,8,16 --budget "$b" \
    --json "$OUT/diffusers.json"
fi

# The scheduler's goodput per batching mode on the GPU, in process (bundled model: small
# enough that a sweep of the three modes fits the budget).
if ((HAVE_GPU && BUILD_RC == 0)) && wanted load && [[ -z ${CHECK_SKIP_LOAD:-} ]]; then
  b=$(($(left) - 30))
  # beside the bench stages 200 s; alone, what load1 leaves (it takes at most ~105 s)
  cap=200
  wanted bench || wanted diffusers || { cap=$((b - 110)); wanted load1 || cap=$b; }
  ((b > cap)) && b=$cap
  # the plan the bench stage measured best (or the base when it did not run)
  plan=$(python3 -c "
import json, sys
try:
    print(next(e['plan'] for e in json.load(open(sys.argv[1]))['results'] if e.get('part') == 'plan'))
except Exception:
    print(sys.argv[2])" "$OUT/bench.json" "${CHECK_PLAN:-default}")
  # through the real server when it was built and starts here, else in process
  target=(--in-process)
  if "$WORK/build/server/diffusiond" serve --help >/dev/null 2>&1; then
    target=()
  else
    echo "load: no working \`diffusiond serve\` here (not built, or its libraries do not load):"
    "$WORK/build/server/diffusiond" serve --help 2>&1 | head -3
  fi
  # its own budget ends it (with what it measured) before the stage's timeout would
  lb=$((b - 15))
  ((lb < 10)) && lb=10
  # CHECK_LOAD_MODEL=sd15: the random SD1.5 of the bench stage instead (512² and 768²;
  # its single requests take 0.1–0.5 s, so the search starts at 1× their mean rate)
  model=$ROOT/models/default
  read -r -a extra <<<"${CHECK_LOAD_ARGS:---min-requests 60 --refine 2}"
  if [[ ${CHECK_LOAD_MODEL:-} == sd15 && -f $WORK/sd15/model_index.json ]]; then
    model=$WORK/sd15
    extra=(--min-requests 40 --refine 1 --start-rate 1x)
  fi
  echo "load: $model, --cuda-plan $plan, target ${target[*]:-the server over HTTP}, budget ${lb}s"
  PYTHONUNBUFFERED=1 run_stage load "$b" "$WORK/build/server/diffusiond" bench load \
    "${target[@]}" --device cuda --cuda-plan "$plan" --model "$model" --lanes "${CHECK_LANES:-2}" \
    --duration 3 "${extra[@]}" --budget "$lb" --json "$OUT/load.json" \
    --trace "$OUT/load-trace.csv"
  # the same step mode with one lane (serve's default: docs/scheduler.md)
  if wanted load1 && (($(left) >= 70)); then
    lb=$(($(left) - 45))
    ((lb > 90)) && lb=90
    PYTHONUNBUFFERED=1 run_stage load1 "$((lb + 15))" "$WORK/build/server/diffusiond" \
      bench load "${target[@]}" --mode step --lanes 1 --device cuda --cuda-plan "$plan" \
      --model "$model" --duration 3 "${extra[@]}" --budget "$lb" \
      --json "$OUT/load-lanes1.json"
  fi
fi

# An op that failed: its case once more under compute-sanitizer (memcheck), when there
# is time left, so one run also says where an illegal access comes from.
if ((BUILD_RC == 0 && OPS_RC != 0 && OPS_RC != 77)) && command -v compute-sanitizer >/dev/null &&
  [[ -f $OUT/ops.json ]]; then
  first=$(python3 -c "
import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if not o.get('ok') and 'dtype' in o:
        print(o['op'].split('[')[0]); break" "$OUT/ops.json" 2>/dev/null)
  if [[ -n $first ]]; then
    GPU_OPS_FILTER=$first run_stage sanitizer 90 compute-sanitizer --tool memcheck \
      --print-limit 10 "$B/test_gpu_ops"
  fi
fi

echo "=== summary ==="
STAGES_JSON="[${STAGES_JSON%,}]" OUT="$OUT" python3 "$ROOT/tests/gpu/summarize.py" || true
echo "check.sh: done in $(($(date +%s) - START))s; ops rc $OPS_RC, pipeline rc $PIPE_RC"
((OPS_RC == 0 && PIPE_RC == 0))
