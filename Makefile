# Two entry points for a fresh machine:
#   make demo   - create .venv, install, fine-tune PIG and the strongest two-tower baseline (CLIP-ViP)
#                 from the shipped pretrained tiny CLIP on the quality benchmark's `salient` videos with
#                 the benchmark's own recipe (30 epochs, seed 0), the two at once on one core each
#                 (~4.5 min on 2 cores after set-up), print both side by side. DEMO_SETTING=parts for
#                 the other setting, DEMO_BASELINE=meanp|seqtransf|xpool, DEMO_EPOCHS=N for a shorter run
#   make test   - create .venv, install, run the test suite
# Also: make demo-scratch (the from-scratch mean-pooling demo), make pretrained-clip (regenerate the
# shipped assets/clip-tiny-scenes from stage 1 and check it is bit-identical: on a CPU like the one that made
# it; torch's float kernels round differently on other instruction sets, e.g. AVX-512).
#
# TORCH_SPEC pins the torch build; the default is the CPU build that our 2-core dev/CI machines
# carry in a local wheel folder. Where pip also looks in such a folder, `torch==2.13.0` resolves to
# 2.13.0+cpu even on a GPU machine (a local version label sorts above the plain version) and an
# unpinned `torch` to the newest release. On a GPU machine (docs/gpu.md), either reuse its CUDA torch:
#   make setup VENV_FLAGS=--system-site-packages TORCH_SPEC=torch
# or name the index of the CUDA build you want:
#   make setup TORCH_SPEC=torch==2.13.0 TORCH_INDEX=https://download.pytorch.org/whl/cu130
PYTHON ?= python3
VENV ?= .venv
VENV_FLAGS ?=
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1

DEMO_BASELINE ?= clipvip
DEMO_EPOCHS ?= 30
DEMO_SETTING ?= salient
DEMO_ROOT = data/scene_videos_$(DEMO_SETTING)
DEMO_ARGS = --trainer.max_epochs $(DEMO_EPOCHS) --data.source.setting $(DEMO_SETTING) --data.source.root $(DEMO_ROOT)

.PHONY: test-fast setup demo demo-scratch pretrained-clip test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(BIN)/pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e '.[dev]' "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet --no-deps 'litdata>=0.2.60,<0.3'  # without torchvision: see the `stream` extra
	touch $@

# The set is written once first (two fits must not both write it); then the baseline trains in the
# background (its log: runs/demo_<baseline>.log) while PIG trains here, one thread each. A background job
# of a non-interactive shell ignores Ctrl-C, so the trap stops it with the foreground run.
demo: setup
	$(BIN)/python -c "import logging; logging.basicConfig(level=logging.INFO, format='%(message)s'); \
		from pig_lightning.data import SceneVideos; SceneVideos('$(DEMO_ROOT)', '$(DEMO_SETTING)').prepare()"
	@mkdir -p runs
	@echo "PIG trains here, $(DEMO_BASELINE) at the same time in the background: tail -f runs/demo_$(DEMO_BASELINE).log"
	@OMP_NUM_THREADS=1 $(BIN)/pig-lightning fit --config conf/quality/$(DEMO_BASELINE).yaml $(DEMO_ARGS) \
		--trainer.logger.init_args.name demo_$(DEMO_BASELINE) > runs/demo_$(DEMO_BASELINE).log 2>&1 & baseline=$$!; \
	trap 'kill $$baseline 2>/dev/null; exit 130' INT TERM; \
	OMP_NUM_THREADS=1 $(BIN)/pig-lightning fit --config conf/quality/pig.yaml $(DEMO_ARGS) \
		--trainer.logger.init_args.name demo_pig; pig=$$?; \
	wait $$baseline; status=$$?; \
	if [ $$status -ne 0 ]; then tail -n 20 runs/demo_$(DEMO_BASELINE).log; \
		echo "the $(DEMO_BASELINE) run failed (exit $$status): runs/demo_$(DEMO_BASELINE).log"; fi; \
	[ $$pig -eq 0 ] && [ $$status -eq 0 ]
	$(BIN)/pig-lightning compare runs/demo_pig runs/demo_$(DEMO_BASELINE)

demo-scratch: setup
	$(BIN)/pig-lightning fit --config conf/demo.yaml

# Stage 1 of the quality benchmark (~6 min on 2 cores), exported and compared with the shipped copy (bit-identical).
pretrained-clip: setup
	rm -rf runs/pretrained_clip
	$(BIN)/pig-lightning fit --config conf/quality/pretrain_clip.yaml --trainer.logger.init_args.name pretrained_clip
	$(BIN)/pig-lightning export --ckpt_path "$$(ls runs/pretrained_clip/version_0/checkpoints/best-*.ckpt)" \
		--output data/quality_clip --overwrite --checksums
	cd data/quality_clip && sha256sum -c ../../assets/clip-tiny-scenes/SHA256SUMS

test: setup
	$(BIN)/python -m pytest -q

# the quick lane for iterating (no training runs, no process launches): a few minutes on 2 cores
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not cluster"

clean:
	rm -rf $(VENV) data/synthetic runs
