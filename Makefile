# Two commands do everything on a fresh machine (they create .venv/ when missing):
#   make reproduce   run the notebook chain 01..06 on the embedded tiny backbone (offline, CPU)
#   make test        run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
RUN_DIR ?= runs/notebooks
# make test also installs requirements/gpu.txt (unsloth; ~45 s, +0.4 GB, no pin changes) so that
# tests/test_unsloth_guard.py checks the GPU path's calls on this CPU machine; GPU_EXTRA=0 skips it.
GPU_EXTRA ?= 1
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export EVOLMM_CACHE ?= $(CURDIR)/.cache/evolmm
export MPLBACKEND ?= Agg
# real benchmark samples (notebook 05, tests); the library reads them only from this setting
export EVOLMM_BENCHMARKS_DIR ?= $(abspath $(CURDIR)/../shared/benchmarks)

.PHONY: reproduce test venv lab clean
venv: $(VENV)/.installed

$(VENV)/.installed: requirements/cpu.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/cpu.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name evolmm --display-name "EvoLMM (.venv)" >/dev/null
	touch $@

# make test also installs requirements/extras.txt (lmms-eval, tensorboard; ~1.5 min, no pin changes) so the
# lmms-eval plugin and the tensorboard tracker run in the tests.
$(VENV)/.installed-extras: requirements/extras.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements/extras.txt
	touch $@

$(VENV)/.installed-gpu: requirements/gpu.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements/gpu.txt
	touch $@

reproduce: venv
	$(PY) -m evolmm_lib notebooks --output-dir $(RUN_DIR)

test: venv $(VENV)/.installed-extras $(if $(filter 1,$(GPU_EXTRA)),$(VENV)/.installed-gpu)
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

lab: venv
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf runs .cache
