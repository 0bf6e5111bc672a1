# Two entry points for a fresh machine:
#   make demo   - create .venv, install, train + test the demo on the synthetic set
#   make test   - create .venv, install, run the test suite
#
# TORCH_SPEC pins the torch build. The default is the CPU build our 2-core dev/CI
# machines carry locally; on a GPU machine pip resolves the same pin to its CUDA build,
# or override it: `make demo TORCH_SPEC='torch>=2.4'`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1

.PHONY: setup demo test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/pig-lightning fit --config conf/demo.yaml

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) data/synthetic runs
