# Two commands: `make demo` (the embedded default: emulators, sample alerts, a demo TOM) and `make test`.
# Both set up what they need first: the project's virtualenv and the BigQuery emulator's own virtualenv
# (bqemulator pins packages that would clash with the project's, so it lives apart).

PYTHON ?= python3
VENV := .venv
BQ_VENV := .venv-bqemu
DEMO_ARGS ?=

.PHONY: setup demo-assets browser demo test docs screenshots lint bench clean

setup: $(VENV)/.installed $(BQ_VENV)/.installed demo-assets

# Bootstrap for the demo TOM's pages (TOM Toolkit loads it from a CDN: offline they would be unstyled), fetched once
# with `npm pack` into the git-ignored .cache/demo-static; without npm or network the pages keep the CDN's links.
demo-assets: $(VENV)/.installed
	@$(VENV)/bin/python -m tom_pittgoogle.demo.assets

# The end-to-end page test drives Debian's chromium with Playwright (no browser download: `playwright install`
# needs the internet). Installed from Debian's packages when missing and run as root; anyone else is told what to
# install (apt-get needs root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "The browser test (tests/test_browser.py) needs a 'chromium' on PATH. Install it as root, e.g." \
	         "'sudo apt-get install chromium' on Debian/Ubuntu, then run make again." >&2; \
	    exit 1; \
	  fi; }

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

# The emulator downloads DuckDB's spatial extension at start; the pinned wheel ships it for offline use.
$(BQ_VENV)/.installed:
	$(PYTHON) -m venv $(BQ_VENV)
	$(BQ_VENV)/bin/pip install --quiet --upgrade pip
	$(BQ_VENV)/bin/pip install --quiet bqemulator==1.4.0 duckdb==1.5.5 duckdb-extension-spatial==1.5.5 numpy
	touch $@

demo: setup
	$(VENV)/bin/python -m tom_pittgoogle.demo $(DEMO_ARGS)

# The tests mostly wait (on the emulators, on the processes they start), so they run in parallel workers, each
# with its own emulators and test database (see tests/conftest.py); `make test TEST_WORKERS=0` runs them in one.
TEST_WORKERS ?= 6
test: setup browser
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

# The documentation (docs/, Sphinx with MyST Markdown), warnings as errors.
docs: setup
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

# The README's screenshots: the browser test, keeping each step's screenshot in docs/screenshots.
screenshots: setup browser
	PITTGOOGLE_SCREENSHOTS=$(CURDIR)/docs/screenshots $(VENV)/bin/python -m pytest tests/test_browser.py

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(BQ_VENV) .cache

# Throughput of the stream routes against the emulator and PostgreSQL, with same-run baselines (bench/); then
# what a message a subscription filter drops costs, next to a stored alert.
BENCH_ARGS ?=
# The Rubin-visit scenario: bursts of 10,000 LSST alerts 40 s apart, then 300 alerts/s (bench/visit_bursts.py).
VISIT_ARGS ?=
bench: setup
	$(VENV)/bin/python bench/stream_ingest.py $(BENCH_ARGS)
	$(VENV)/bin/python bench/server_filter.py
	$(VENV)/bin/python bench/visit_bursts.py $(VISIT_ARGS)
	$(VENV)/bin/python bench/target_matching.py
