# xai-repro: `make book` builds the site, `make test` runs unit + notebook regression tests.
# Every target is idempotent: the venv is re-used while pyproject.toml and the lock are unchanged,
# and trained models are cached in data/cache.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# One torch thread count everywhere: trained weights (and so nbval outputs) depend on it.
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2
export PYDEVD_DISABLE_FILE_VALIDATION := 1

# nbval with numbers compared at their printed precision (tests/nbval_numbers.py); no wall-clock cell
# limit that a loaded machine could hit (86400 s).
NBVAL := -p tests.nbval_numbers --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg \
	--nbval-cell-timeout=86400 -p no:cacheprovider
# Results JSONs of the nbval runs (compared with book/results by tests/test_results.py), and the
# scratch outputs of `make models`: both git-ignored, never book/.
FRESH := $(CURDIR)/data/cache/results-fresh
MODELS_RUN := $(CURDIR)/data/cache/models-run
CHAPTERS_WITH_MODELS := methods salagg synthetic_cells disagreement
BOOK_NOTEBOOKS = $(wildcard book/*.ipynb)
REAL_NOTEBOOKS = $(wildcard book/real/*.ipynb)
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DATA_ROOT := $(shell $(PYTHON) -c "import os; print(os.path.abspath(os.environ.get('XAI_DATA_ROOT', '../shared/data')))")

.PHONY: venv book models notebooks test test-fast test-nbval test-results test-site test-models bench scaling lock lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements-lock.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements-lock.txt -e ".[book,test,cluster]"
	# Ribeiro et al.'s Anchor (hermitry chapter); its declared dependencies (spacy, lime) serve text only
	$(PY) -m pip install -q --no-deps -c requirements-lock.txt anchor-exp
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (xai-repro)" > /dev/null
	touch $(STAMP)

# The runner refuses to write book/ from a tree with uncommitted changes: ALLOW_DIRTY=1 overrides.
# Real-data chapters run first, so that the overview (last of `all`) summarises this run's results.
book: venv
	@if [ -d "$(DATA_ROOT)" ]; then $(PY) -m xai_utils.run all --preset real $(if $(ALLOW_DIRTY),--allow-dirty,); \
	  else echo "note: $(DATA_ROOT) absent: book/real/ notebooks kept as committed (not re-executed)"; fi
	$(PY) -m xai_utils.run all --preset offline $(if $(ALLOW_DIRTY),--allow-dirty,)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo "book: open _build/html/index.html"

# Retrain the shipped offline models (data/models, see xai_utils/models/store.py) from scratch on this
# machine; the chapters run into a scratch folder. Commit data/models, then `make book`.
models: venv
	rm -rf data/models $(MODELS_RUN)
	set -e; for p in $(CHAPTERS_WITH_MODELS); do \
	  XAI_SHIP_MODELS=1 XAI_CACHE_DIR=$(MODELS_RUN)/cache $(PY) -m xai_utils.run $$p -p retrain=true --out $(MODELS_RUN)/$$p.ipynb; \
	done

# jupytext pairs notebooks/<paper>.py with notebooks/<paper>.ipynb, for plain `papermill` or Jupyter.
notebooks: venv
	$(VENV)/bin/jupytext --to ipynb notebooks/*.py

test: test-fast test-nbval test-results test-site

# Unit tests and the smoke preset of every notebook (papermill on the jupytext source).
test-fast: venv
	$(PY) -m pytest -q -m "not slow and not site" tests

# Re-executes the committed notebooks and compares their outputs; their results JSONs go to $(FRESH).
test-nbval: venv
	rm -rf $(FRESH) && mkdir -p $(FRESH)
	XAI_RESULTS_DIR=$(FRESH) $(PY) -m pytest -q $(NBVAL) $(BOOK_NOTEBOOKS)
	@if [ -d "$(DATA_ROOT)" ]; then \
	  if [ -n "$(REAL_NOTEBOOKS)" ]; then XAI_RESULTS_DIR=$(FRESH) $(PY) -m pytest -q $(NBVAL) $(REAL_NOTEBOOKS); \
	  else echo "note: no book/real/*.ipynb to check"; fi; \
	else echo "SKIPPED nbval of book/real/*.ipynb: data folder $(DATA_ROOT) absent (set XAI_DATA_ROOT)"; fi

# Numbers and verdicts of the nbval runs against book/results, with declared tolerances.
test-results: venv
	XAI_FRESH_RESULTS=$(FRESH) $(PY) -m pytest -q tests/test_results.py

# Retrains every shipped model as another CPU would compute (vector ISA switched down: the host that made
# data/models would retrain bit-identically) and checks its accuracy against the shipped one.
# the site built (no re-execution) and every page opened in headless Chromium; screenshots in _build/screenshots
test-site: venv $(CHROMIUM)
	$(PY) -m pytest -q -m site tests/test_site.py

$(CHROMIUM):
	@echo "installing Debian's chromium for the browser test (tests/test_site.py)"
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null; }

test-models: venv
	ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=AVX2 $(PY) -m pytest -q -m slow tests/test_shipped_models.py

bench: venv
	$(PY) -m xai_utils.bench $(if $(QUICK),--quick,) $(if $(RUNS),--runs $(RUNS),) $(if $(DEVICE),--device $(DEVICE),)

# book/scaling.md: Ray's speed-up on 1 and 2 local workers and the projected cost of every full preset
scaling: venv
	$(PY) -m xai_utils.bench --scaling $(if $(QUICK),--quick,) $(if $(DEVICE),--device $(DEVICE),)
	$(if $(QUICK),,$(PY) -m xai_utils.bench --scaling --write-page)

lock: venv
	{ echo "# Exact versions installed by make (pip constraints); regenerate with make lock."; \
	  $(PY) -m pip freeze --exclude-editable | grep -v '^xai-utils'; } > requirements-lock.txt

lint: venv
	$(VENV)/bin/ruff check xai_utils tests notebooks

clean:
	rm -rf _build book/_build data/cache .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
