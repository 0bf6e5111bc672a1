#!/usr/bin/env bash
# The GPU check in one call (docs/gpu.md): python3 must already have a CUDA torch; nothing is
# downloaded. Packages it lacks come from WHEELS (installed --no-index into OUT/site).
#
#   bash benchmarks/gpu_check.sh OUT [WHEELS] [more options of benchmarks/gpu_check.py]
#
# The stages share a 480 s budget; the outer timeout is a guard for a hang outside Python.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash benchmarks/gpu_check.sh OUT_FOLDER [WHEEL_FOLDER] [options]}
WHEELS=${2:-}
shift $(( $# < 2 ? $# : 2 ))
exec timeout 540 "${PYTHON:-python3}" benchmarks/gpu_check.py --out "$OUT" ${WHEELS:+--wheels "$WHEELS"} "$@"
