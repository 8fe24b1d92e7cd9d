# Two commands do everything on a fresh machine (they create .venv/ when missing):
#   make reproduce   run the notebook chain 01..06 on the miniature world (offline, CPU)
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
# real benchmark samples (notebook 05, tests); the library reads them only from this setting
export EVOLMM_BENCHMARKS_DIR ?= $(abspath $(CURDIR)/../shared/benchmarks)

.PHONY: reproduce test test-official venv lab clean browser mutants lint
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

# tests/test_browser.py drives JupyterLab in headless Chromium (Debian's package, installed when missing).
test: venv $(VENV)/.installed-extras $(if $(filter 1,$(GPU_EXTRA)),$(VENV)/.installed-gpu) browser
	$(VENV)/bin/ruff check evolmm_lib tests benchmarks notebooks configs
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

lint: $(VENV)/.installed-extras
	$(VENV)/bin/ruff check evolmm_lib tests benchmarks notebooks configs

# parity with the official script, run live: OFFICIAL_SCRIPT = a copy of the official src/train.py with
# AutoModelForVision2Seq renamed to AutoModelForImageTextToText (tests/fixtures/official/README.md)
test-official: venv
	@test -n "$(OFFICIAL_SCRIPT)" || { echo "usage: make test-official OFFICIAL_SCRIPT=path/to/train.py"; exit 2; }
	EVOLMM_OFFICIAL_SCRIPT=$(abspath $(OFFICIAL_SCRIPT)) $(PY) -m pytest -q tests/test_recipes.py -m official_live $(PYTEST_ARGS)

# mutation testing of the core modules (rewards, policy, logprobs, rollout, checkpoint, evaluation scorers; the
# list is [tool.mutmut] in pyproject.toml) against their fast tests; slow, so not part of make test. mutmut keeps
# its results in mutants/ and re-tests only what changed; MUTANTS='evolmm_lib.rewards*' limits a run. The report
# (runs/mutants/report.txt) lists every survivor not triaged in tests/mutants_equivalent.txt; one fails the target.
MUTANTS ?=
MUTANTS_JOBS ?= 2
mutants: venv $(VENV)/.installed-extras
	$(PY) -m pip install --quiet -r requirements/mutants.txt
	OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children $(MUTANTS_JOBS) $(MUTANTS)
	$(PY) tests/mutants_report.py --out runs/mutants

browser:
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium missing and not root: tests/test_browser.py will skip"

lab: venv
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf runs .cache
