#!/usr/bin/env bash
# compute-sanitizer over the CUDA tests (GPU machine only, after scripts/setup.sh):
#   bash scripts/cuda_sanitizer.sh [memcheck|racecheck|...] [pytest args...]
# Default: memcheck over the CUDA cases of every op's test file. torch's caching
# allocator is turned off so that each tensor is its own allocation and memcheck
# sees its true bounds; hypothesis draws fewer examples (the sanitizer is slow).
set -euo pipefail
cd "$(dirname "$0")/.."
tool=${1:-memcheck}
shift || true
args=("$@")
if [ ${#args[@]} -eq 0 ]; then
  args=(tests/test_conv2d.py tests/test_conv_transpose2d.py tests/test_max_pool2d.py
        tests/test_avg_pool2d.py tests/test_depthwise.py tests/test_separable.py tests/test_autograd.py -k cuda)
fi
export PYTORCH_NO_CUDA_MEMORY_CACHING=1 HYPOTHESIS_MAX_EXAMPLES=${HYPOTHESIS_MAX_EXAMPLES:-5}
exec compute-sanitizer --tool "$tool" --error-exitcode 99 --target-processes all \
  "${PYTHON:-python3}" -m pytest -q -p no:cacheprovider "${args[@]}"
