#!/usr/bin/env bash
# The device benchmark (benchmarks/device.py): one JSON line per measure on stdout, on whatever
# backend JAX finds, logs on stderr. Each measure runs in a process of its own.
#
#   bash benchmarks/device.sh                       # paper settings: a few minutes on a GPU
#   bash benchmarks/device.sh --tiny                # CI sizes (tests/test_device_benchmark.py)
#   bash benchmarks/device.sh --dtypes bfloat16 --epochs 2 --data_dir data
#
# Arguments go to every measure (python benchmarks/device.py --help); MEASURES picks some, e.g.
# MEASURES="matmul train_step". PYTHON defaults to the repository's .venv when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
for measure in ${MEASURES:-matmul train_step generate epoch}; do
  "$PYTHON" benchmarks/device.py --measure "$measure" "$@"
done
