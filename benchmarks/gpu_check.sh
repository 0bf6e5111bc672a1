#!/usr/bin/env bash
# GPU check of issue #11 ("Keep a GPU fed") for a machine with one CUDA GPU. All within ~8 minutes.
#
#   bash benchmarks/gpu_check.sh            # from the repository root -> docs/gpu_throughput.md
#
# NOT RUN YET: it was written on the 2-core CPU-only development machine, where none of it can
# run. What it does:
#   1. installs into .venv-gpu: the default torch from PyPI (a CUDA build on Linux; override with
#      TORCH_SPEC, e.g. TORCH_SPEC="torch==2.13.0"), then the package (`pip install -e '.[dev]'`);
#   2. a tiny bf16-mixed fit + test on CUDA (conf/demo_pig.yaml, 1 short epoch), once plain and once
#      with model.compile=true (torch.compile/inductor of the backbone);
#   3. finds the largest power-of-two batch for which a PIG ViT-B/32 12-frame bf16 training step
#      fits (PIG needs a little more memory than CLIP-ViP);
#   4. benchmarks/train_throughput.py for PIG and CLIP-ViP at B/32, 12 frames, that batch, bf16-mixed,
#      4 DataLoader workers -> docs/gpu_throughput.md (clips/s, data wait / forward+backward /
#      optimiser, FLOPs per step, MFU against the bf16 peak table, peak memory).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
DEADLINE=$((SECONDS + 480))
left() { echo $((DEADLINE - SECONDS)); }
step() { echo; echo "=== $* ($(left) s left)"; }

step "install"
if [ ! -x .venv-gpu/bin/python ]; then python3 -m venv .venv-gpu; fi
PY=.venv-gpu/bin/python
$PY -m pip install -q --upgrade pip
$PY -m pip install -q "${TORCH_SPEC:-torch}"
$PY -m pip install -q -e '.[dev]'
$PY - <<'PY'
import torch
assert torch.cuda.is_available(), f"torch {torch.__version__} sees no CUDA GPU"
print(torch.__version__, torch.cuda.get_device_name(0), f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true

step "tiny bf16-mixed fit + test on CUDA"
RUNS=$(mktemp -d)
FIT=(fit --config conf/demo_pig.yaml --trainer.accelerator gpu --trainer.precision bf16-mixed
     --trainer.max_epochs 1 --trainer.logger.init_args.save_dir "$RUNS" --data.source.root "$RUNS/synthetic"
     --data.source.num_train 320 --data.source.num_val 40 --data.source.num_test 40
     --data.num_workers 2 --trainer.enable_progress_bar false)
timeout "$(left)" .venv-gpu/bin/pig-lightning "${FIT[@]}"
step "the same with model.compile=true"
timeout "$(left)" .venv-gpu/bin/pig-lightning "${FIT[@]}" --model.compile true

step "largest batch that fits (PIG, B/32, 12 frames, bf16-mixed)"
BATCH=""
for b in 256 128 64 32 16 8; do
  if timeout "$(left)" $PY benchmarks/train_throughput.py --towers pig --size B/32 --frames 12 --batch "$b" \
       --precision bf16-mixed --device cuda --warmup 0 --steps 1 >/dev/null 2>"$RUNS/probe_$b.log"; then
    BATCH=$b; echo "batch $b fits"; break
  fi
  echo "batch $b: $(grep -o 'OutOfMemoryError[^.]*' "$RUNS/probe_$b.log" | head -1 || tail -1 "$RUNS/probe_$b.log")"
done
[ -n "$BATCH" ] || { echo "no batch fits"; exit 1; }

step "train_throughput.py: PIG and CLIP-ViP at B/32, 12 frames, batch $BATCH"
timeout "$(left)" $PY benchmarks/train_throughput.py --towers pig clip-vip --size B/32 --frames 12 \
  --batch "$BATCH" --precision bf16-mixed --device cuda --workers 4 --warmup 3 --steps 10 \
  --out docs/gpu_throughput.md
echo "done in ${SECONDS} s"
