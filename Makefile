# wagtail-icarus-smtp — two commands for a fresh machine:
#
#   make demo    the demo site with a local SMTP server, a task worker and the web server
#   make test    lint, migrations check and the whole test suite
#
# Both create their virtualenv ($(VENV)) and install what they need. For a CI matrix:
#   make test PYTHON=python3.13 VENV=.venv-313 DEPS='"django>=6.1,<6.2" "wagtail>=8.0,<8.1"'

PYTHON ?= python3
VENV ?= .venv
DEPS ?=
PYTEST_ARGS ?=

BIN := $(VENV)/bin
# One stamp per extra and DEPS: a change of DEPS (or of pyproject.toml) reinstalls.
DEPS_ID := $(shell printf '%s' '$(DEPS)' | cksum | cut -d' ' -f1)
TEST_STAMP := $(VENV)/.installed-test-$(DEPS_ID)
DEMO_STAMP := $(VENV)/.installed-devserver-$(DEPS_ID)
BENCH_STAMP := $(VENV)/.installed-bench-$(DEPS_ID)
TEST_ENV := DJANGO_SETTINGS_MODULE=tests.settings PYTHONPATH=.

.DEFAULT_GOAL := help
.PHONY: help demo test bench bench-memory lint migrations-check pytest browser-test chromium messages clean

help:
	@echo "make demo   run the demo site (http://127.0.0.1:8000/) with its dev SMTP server"
	@echo "make test   lint, migrations check and the test suite (browser tests need: make chromium)"
	@echo "make bench  ours vs Django's SMTP backend, post_office, django-mailer (BENCH_ARGS=--help)"
	@echo "make bench-memory  the worker's peak memory draining large messages (MEMORY_ARGS=--help)"
	@echo "variables:  PYTHON=$(PYTHON) VENV=$(VENV) DEPS=$(DEPS) PYTEST_ARGS=$(PYTEST_ARGS)"

demo: $(DEMO_STAMP)
	$(BIN)/python example_site/run_demo.py

test: $(TEST_STAMP)
	$(MAKE) --no-print-directory lint migrations-check pytest

# Side by side: ours, Django's stock SMTP backend, post_office and django-mailer against
# one local TLS server; prints medians, min-max and the ratios (README, "Performance").
#   make bench BENCH_ARGS="--postgres --rtt 20 --rounds 5"
bench: $(BENCH_STAMP)
	$(BIN)/python bench/bench_send.py $(BENCH_ARGS)

# The worker's peak RSS while draining 10,000 messages with a 1 MB attachment each.
bench-memory: $(BENCH_STAMP)
	$(BIN)/python bench/memory.py $(MEMORY_ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

migrations-check: $(TEST_STAMP)
	$(TEST_ENV) $(BIN)/django-admin makemigrations --check --dry-run
	$(BIN)/python example_site/manage.py makemigrations --check --dry-run

pytest: $(TEST_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The browser tests alone (Playwright + Debian's Chromium; see `make chromium`).
browser-test: $(TEST_STAMP)
	$(BIN)/python -m pytest tests/browser $(PYTEST_ARGS)

# Debian's Chromium for the browser tests (as root); Playwright never downloads a browser.
chromium:
	command -v chromium >/dev/null || { apt-get update && apt-get install -y chromium; }

# Compile the translations (after editing a .po file).
messages: $(TEST_STAMP)
	cd wagtail_icarus_smtp && $(abspath $(BIN))/django-admin compilemessages

$(VENV)/bin/python:
	@# Debian's python3 without python3-venv has no ensurepip: fall back to its pip.
	$(PYTHON) -m venv $(VENV) || { \
	  echo "venv without ensurepip: installing pip into $(VENV) with the system pip"; \
	  $(PYTHON) -m venv --clear --without-pip $(VENV) && \
	  $(PYTHON) -m pip --python $(VENV)/bin/python install --quiet pip; }
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-%-$(DEPS_ID): pyproject.toml | $(VENV)/bin/python
	rm -f $(VENV)/.installed-*
	$(BIN)/python -m pip install --quiet -e ".[$*]" $(DEPS)
	touch $@

clean:
	rm -rf .venv .venv-* build dist *.egg-info .pytest_cache .ruff_cache
