# tickdeck — every target creates and fills .venv itself, so a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
export TICKDECK_SAMPLE_DATA ?= $(abspath ../shared/data)

.PHONY: run test bench lint fmt clean engine demo tools

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# After installing, compile the options kernels once (numba caches them beside the sources).
WARM_UP := $(PY) -c "import engine.options as o; o.warm_up()"

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	$(WARM_UP)
	touch $@

$(DEV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	$(WARM_UP)
	touch $(STAMP) $@

## Open tickdeck on the built-in simulated market (no credentials, no network).
run: $(STAMP)
	$(VENV)/bin/tickdeck

## A short guided tour of the engine on the sim market.
demo: $(STAMP)
	$(VENV)/bin/tickdeck engine --mode sim --demo

## Tools the tests use outside the venv: tmux, for the end-to-end console test.
tools:
	@command -v tmux >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing tmux for the end-to-end console test"; \
	    apt-get update -qq && apt-get install -y -qq tmux >/dev/null; \
	  else \
	    echo "tmux is not installed and this is not root: install it (sudo apt-get install tmux)," \
	      "or the end-to-end console test is skipped"; \
	  fi; }

## Lint, layering contract and the whole test suite.
test: $(DEV_STAMP) tools
	$(PY) -m ruff check engine tui tests
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

lint: $(DEV_STAMP)
	$(PY) -m ruff check engine tui tests
	$(PY) -m ruff format --check engine tui tests
	$(VENV)/bin/lint-imports

fmt: $(DEV_STAMP)
	$(PY) -m ruff format engine tui tests
	$(PY) -m ruff check --fix engine tui tests

## Benchmarks: each figure printed beside a reference measured in the same run; also .bench/results.json.
bench: $(DEV_STAMP)
	$(PY) -m pytest -q -s tests/bench

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .bench
