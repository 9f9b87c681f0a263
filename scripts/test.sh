#!/usr/bin/env bash
# README command 2: set up, then run the whole test suite (CPU; CUDA tests run
# when a GPU is present; the CUDA kernel compile-check runs when nvcc exists).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" -m pytest tests -q -p no:cacheprovider "$@"
