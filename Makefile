# Two commands do all set-up on a fresh machine:
#   make run    runs the connector on the local emulators (ONCE=1: one cycle, a report, exit)
#   make test   lint, type checks and the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_PY := $(VENV)/.installed
STAMP_NODE := node_modules/.installed
# The browser tests drive Debian's Chromium (Playwright cannot download a browser here).
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run test lint typecheck pytest bench clean

$(STAMP_PY): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(STAMP_NODE): package.json
	npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error
	touch $@

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

local.settings.json: | local.settings.sample.json
	cp local.settings.sample.json $@

run: $(STAMP_PY) $(STAMP_NODE) local.settings.json
	$(PY) -m devtools.run_local --settings local.settings.json $(if $(ONCE),--once,)

lint: $(STAMP_PY)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP_PY)
	$(VENV)/bin/mypy

pytest: $(STAMP_PY) $(STAMP_NODE) $(CHROMIUM)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

# The quick benchmarks; the larger runs and the kill trials are in bench/README.md.
bench: $(STAMP_PY) $(STAMP_NODE)
	$(PY) -m bench.import_time
	$(PY) -m bench.emulator_overhead
	$(PY) -m bench.optin_sync --contacts 20000 --accounts 3
	$(PY) -m bench.suppression_sync --suppressions 20000 --accounts 3
	$(PY) -m bench.engagement_sync --events 100000 --accounts 3 --dry-run
	$(PY) -m bench.timeline_api --calls 60 --no-walk

clean:
	rm -rf .run .emulators .pytest_cache .mypy_cache .ruff_cache
