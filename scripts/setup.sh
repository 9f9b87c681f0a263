#!/usr/bin/env bash
# One-time (and idempotent) set-up shared by the two README commands:
#  1. torch: the importable one if any (e.g. the GPU machine's CUDA build),
#     otherwise torch==2.13.0 from pip;
#  2. the Python packages the tests and benchmarks use, where missing (a package
#     that cannot be installed, e.g. on a machine without network, is reported
#     and skipped: the tests that need it skip or fail on their own);
#  3. the extension cnnops._C, built in place (CUDA too when torch has CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "[setup] torch not importable: installing torch==2.13.0"
  "$PY" -m pip install --quiet torch==2.13.0
fi

missing=$("$PY" - <<'PYEOF'
import importlib.util
needed = {"pytest": "pytest", "hypothesis": "hypothesis", "numpy": "numpy",
          "matplotlib": "matplotlib", "tqdm": "tqdm", "ninja": "ninja",
          "sklearn": "scikit-learn",
          "expecttest": "expecttest"}  # torch's OpInfo samples (tests/test_avg_pool2d.py)
print(" ".join(pkg for mod, pkg in needed.items() if importlib.util.find_spec(mod) is None))
PYEOF
)
if [ -n "$missing" ]; then
  echo "[setup] installing: $missing"
  if ! "$PY" -m pip install --quiet --retries 1 --timeout 15 $missing; then
    for pkg in $missing; do  # one at a time, so that one failure costs only its package
      "$PY" -m pip install --quiet --retries 1 --timeout 15 "$pkg" ||
        echo "[setup] warning: could not install $pkg (no network?); going on without it" >&2
    done
  fi
fi

# torchvision (its models for the tests and benchmarks), the release that matches torch,
# without dependencies so that pip never swaps the torch that is installed
if ! "$PY" -c "import importlib.util as u, sys; sys.exit(u.find_spec('torchvision') is None)"; then
  tv=$("$PY" -c "import torch; v = torch.__version__.split('+')[0].split('.'); print(f'0.{int(v[1]) + 15}.*')")
  echo "[setup] installing torchvision==$tv"
  "$PY" -m pip install --quiet --no-deps --retries 1 --timeout 15 "torchvision==$tv" ||
    echo "[setup] warning: could not install torchvision (no network?); going on without it" >&2
fi

echo "[setup] building cnnops._C in place (log: build/build.log)"
mkdir -p build
if ! MAX_JOBS=${MAX_JOBS:-2} "$PY" setup.py build_ext --inplace >build/build.log 2>&1; then
  tail -n 60 build/build.log
  echo "[setup] build failed (full log: build/build.log)"
  exit 1
fi
"$PY" -c "import torch, cnnops; print('[setup] cnnops', cnnops.__version__, 'torch', torch.__version__, cnnops.build_info())"
