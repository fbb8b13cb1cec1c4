# DealDesk: `make run` starts the app, `make test` runs every check CI runs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install lock audit run test lint format chromium bench loadtest test-postgres clean

PIP := $(PY) -m pip --quiet --disable-pip-version-check
# Every dependency, direct and transitive, pinned with its hashes (pip-tools; see README).
LOCK := requirements.lock
LOCK_FLAGS := --quiet --extra=dev --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links

# The locked set alone: hash-checked, nothing resolved at install time.
$(VENV)/.locked: $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes -r $(LOCK)
	touch $@

# Then DealDesk itself, with no dependency of its own; `pip check` catches a lock that lacks
# something pyproject.toml asks for.
$(VENV)/.installed: pyproject.toml $(VENV)/.locked
	$(PIP) install --no-deps --no-build-isolation -e .
	$(PY) -m pip check >/dev/null || { $(PY) -m pip check; \
	  echo "$(LOCK) does not match pyproject.toml: run 'make lock'."; exit 1; }
	touch $@

install: $(VENV)/.installed

# Re-resolve the lock from pyproject.toml (existing pins are kept unless LOCK_ARGS=--upgrade).
lock: $(VENV)/.locked
	$(VENV)/bin/pip-compile $(LOCK_FLAGS) $(LOCK_ARGS) --output-file=$(LOCK) pyproject.toml

# pip-audit over the locked set. Exit 0: no known vulnerability; 1: vulnerabilities found;
# 3: the vulnerability database could not be reached, so nothing was checked.
audit: $(VENV)/.locked
	$(PY) scripts/audit.py $(LOCK)

# Local use: DEBUG defaults to true here (the environment, then .env, may say otherwise).
# The port is PORT from the environment or .env, else 8000 (settings.PORT).
run: install
	@export DEBUG="$${DEBUG:-$$(sed -n 's/^DEBUG=//p' .env 2>/dev/null | tail -n 1)}"; \
	export DEBUG="$${DEBUG:-true}"; \
	$(PY) manage.py migrate --noinput && $(PY) manage.py serve $(if $(PORT),--port $(PORT))

# Debian's Chromium for the browser tests (Playwright never downloads its own), with a CJK font so
# screenshots of unicode deal names are readable.
chromium:
	@{ command -v chromium && fc-list | grep -qi ipagothic; } >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests…"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq chromium fonts-ipafont-gothic >/dev/null; }

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The Python environment and Debian's Chromium are independent: fetched side by side. Then
# the tests in two lanes at once (scripts/run-tests.sh): the ones that mostly wait on the
# vendors' rate limits in a process of their own, the rest on both cores.
test:
	@$(MAKE) --no-print-directory -j2 install chromium
	@$(MAKE) --no-print-directory lint
	scripts/run-tests.sh

clean:
	rm -rf $(VENV) staticfiles

# The whole suite on PostgreSQL and Redis (Debian's packages, started on loopback for the run).
test-postgres: install chromium
	scripts/with-postgres-redis.sh $(VENV)/bin/pytest

# Benchmarks against the sandbox with injected latency (see docs/benchmarks.md).
bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

# The load run with faults: one source down, the other rate limiting. Redis (Debian's package,
# started for the run) shares the rate budget across the gunicorn workers, as in production.
loadtest: install
	scripts/with-postgres-redis.sh $(PY) bench/loadtest.py $(LOADTEST_ARGS)
