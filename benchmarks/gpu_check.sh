#!/usr/bin/env bash
# The GPU check in one call (docs/gpu.md): python3 must already have a CUDA torch; nothing is
# downloaded. Packages it lacks come from WHEELS (installed --no-index into a temporary folder).
#
#   bash benchmarks/gpu_check.sh OUT [WHEELS] [more options of benchmarks/gpu_check.py]
#
# The stages share a 420 s budget; the outer timeout (SIGTERM at 470 s, SIGKILL 10 s later) is a
# guard for a hang outside Python, within the 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash benchmarks/gpu_check.sh OUT_FOLDER [WHEEL_FOLDER] [options]}
shift
WHEELS=""
case "${1:-}" in
  ''|-*) ;;
  *) WHEELS=$1; shift ;;
esac
exec timeout -k 10 470 "${PYTHON:-python3}" benchmarks/gpu_check.py --out "$OUT" ${WHEELS:+--wheels "$WHEELS"} "$@"
