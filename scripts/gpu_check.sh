#!/usr/bin/env bash
# The whole GPU check in one call, for a lent GPU machine whose time is short
# (about 15 minutes per task, at most 10 per command):
#   bash scripts/gpu_check.sh [OUT_DIR]       (default: $OUT if set, else build/gpu_check)
# (The device tool brings back at most 8 files: write to a folder of your own and tar it
# into $OUT: bash scripts/gpu_check.sh /tmp/gc; tar czf $OUT/gpu_check.tgz -C /tmp/gc .)
# Stages, each under its own time limit (150 + 110 + 130 + 150 s at most, under 9.5
# minutes in all; on the H200 of 2026-12-04: build 88 s, tests 75 s, CUDA rows 97 s, CPU
# rows 71 s):
#   1. build with every core (scripts/setup.sh, CUDA included when torch has CUDA; only
#      the GPU's own architecture unless TORCH_CUDA_ARCH_LIST says otherwise);
#   2. the CUDA tests (pytest -k cuda; pytest-xdist spreads them when installed; the
#      nvcc compile-check is left out: the build compiled every CUDA source), and beside
#      them compute-sanitizer memcheck on the test files in SANITIZE (default: the ones
#      whose CUDA code has no sanitizer log yet), one file per process (under
#      pytest-xdist the sanitizer stalled), few hypothesis examples;
#   3. the CUDA benchmark rows (bfloat16, channels_last), written to OUT_DIR;
#   4. the CPU suite on every core (--threads $(nproc): the engine's scaling past the
#      2-core development machine), without the per-layer rows and the sweep, in
#      OUT_DIR/cpu.
# Every stage's log lands in OUT_DIR, with summary.txt saying how each one ended.
# A stage that fails or times out does not stop the later ones; the exit status is
# non-zero when any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-build/gpu_check}}
mkdir -p "$OUT_DIR"
PY=${PYTHON:-python3}
CORES=$(nproc)
summary="$OUT_DIR/summary.txt"
: >"$summary"
status=0

stage() {  # stage NAME SECONDS COMMAND...: runs COMMAND with a limit, logs to OUT_DIR/NAME.log
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS rc
  timeout --kill-after=10 "$limit" "$@" >"$OUT_DIR/$name.log" 2>&1
  rc=$?
  local how="ok"
  [ $rc -ne 0 ] && how="FAILED (exit $rc)" && status=1
  [ $rc -eq 124 ] && how="TIMED OUT after ${limit}s"
  echo "$name: $how in $((SECONDS - t0)) s; $(tail -n 1 "$OUT_DIR/$name.log")" | tee -a "$summary"
  return $rc
}

{
  date -u +"date: %Y-%m-%dT%H:%M:%SZ"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
  nvcc --version 2>/dev/null | tail -n 1 | sed 's/^/nvcc: /'
  echo "cpu cores: $CORES"
} | tee -a "$summary"

arch=$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())" 2>/dev/null || true)
if ! stage build 150 env MAX_JOBS="$CORES" TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-${arch:-8.0;9.0}}" \
  bash scripts/setup.sh; then
  echo "build failed: nothing else can run" | tee -a "$summary"
  exit 1
fi
"$PY" -c "import torch, cnnops; print('torch', torch.__version__, 'cuda', torch.version.cuda, cnnops.build_info())" \
  | tee -a "$summary"

# compute-sanitizer memcheck beside the tests, one file per process.
sanitize() {  # sanitize FILE
  local base
  base=$(basename "$1" .py)
  stage "memcheck-${base#test_}" 110 env PYTORCH_NO_CUDA_MEMORY_CACHING=1 HYPOTHESIS_MAX_EXAMPLES=3 \
    compute-sanitizer --tool memcheck --error-exitcode 99 --target-processes all \
    "$PY" -m pytest -q -p no:cacheprovider -x "$1" -k cuda
}
pids=()
for f in ${SANITIZE:-tests/test_fused.py tests/test_avg_pool2d.py}; do
  [ -f "$f" ] && { sanitize "$f" & pids+=($!); }
done
xdist=()
if "$PY" -c "import xdist" >/dev/null 2>&1; then xdist=(-n "$((CORES > 12 ? 12 : CORES))"); fi
stage cuda_tests 110 env OMP_NUM_THREADS=1 "$PY" -m pytest tests -q -p no:cacheprovider -k "cuda and not cuda_compile" -rfE --tb=short "${xdist[@]}"
for p in "${pids[@]}"; do wait "$p" || status=1; done

stage benchmarks 130 "$PY" -m benchmarks --device cuda --dtype bfloat16 --layout channels_last \
  --quick --no-progress --out "$OUT_DIR"

stage cpu_threads 150 "$PY" -m benchmarks --device cpu --threads "$CORES" --quick --no-layers --no-sweep \
  --no-compile --no-progress --out "$OUT_DIR/cpu"

echo "gpu_check: $([ $status -eq 0 ] && echo all stages ok || echo some stage FAILED) (logs in $OUT_DIR)" | tee -a "$summary"
exit $status
