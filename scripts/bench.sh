#!/usr/bin/env bash
# README command 1 (the main job): set up, then run the benchmark suite with its
# correctness checks, cnnops vs torch, on the GPU when there is one, else the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" -m benchmarks "$@"
