# The two commands: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test test-suite audit smoke bench check-deploy clean help

help:
	@echo "make run    - set up and serve admin + API on http://$(HOST):$(PORT)/ with demo data"
	@echo "make test   - full suite on throwaway PostgreSQL + Redis, then the SQLite smoke lane"
	@echo "make audit  - bandit (high severity and confidence) and pip-audit (known vulnerabilities); see docs/security.md"
	@echo "make bench  - benchmarks (rating, HTTP orders and portal reads, billing run, analytics) on throwaway PostgreSQL; see docs/benchmarks.md"
	@echo "make clean  - remove the virtualenv and the local database"

# --- environment ------------------------------------------------------------------------
$(PY):
	@$(PYTHON) -m venv $(VENV) || { \
	  echo "Could not create a virtualenv. On Debian/Ubuntu: sudo apt-get install python3-venv"; exit 2; }
	@# the setuptools that `venv` seeds (65.5 on Python 3.11) has known vulnerabilities
	@$(PY) -m pip install --quiet --upgrade pip setuptools

$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed-run

# --- make run -----------------------------------------------------------------------------
# migrate, the Nagra simulator (unless NAGRA_ENDPOINT is set), the demo, runserver: scripts/run.py
run: $(VENV)/.installed-run
	@$(PY) scripts/run.py --host $(HOST) --port $(PORT)

# --- make test ----------------------------------------------------------------------------
# The whole suite on real PostgreSQL and Redis (started on free ports by scripts/testenv.py
# unless DATABASE_URL / REDIS_URL are given), then the smoke lane on the SQLite default.
test: $(VENV)/.installed-dev
	$(MAKE) --no-print-directory audit
	$(PY) scripts/system_deps.py
	$(PY) scripts/testenv.py -- $(PY) -m pytest $(PYTEST_ARGS)
	$(PY) scripts/smoke.py

test-suite: $(VENV)/.installed-dev
	$(PY) scripts/testenv.py -- $(PY) -m pytest $(PYTEST_ARGS)

# --- make audit ---------------------------------------------------------------------------
# bandit: our code (config in pyproject.toml [tool.bandit]); fails on HIGH severity + HIGH
# confidence. pip-audit (scripts/dependency_audit.py): every installed package against PyPI's
# vulnerability data; fails on a known vulnerability, and says NOT CHECKED (failing only with
# AUDIT_STRICT=1) when that data cannot be reached. Ignore a vulnerability only with a reason
# in docs/security.md ("pip-audit ignore list"), and list its id here.
PIP_AUDIT_IGNORE :=
audit: $(VENV)/.installed-dev
	$(VENV)/bin/bandit -c pyproject.toml -r . -lll -iii -q
	PIP_AUDIT_IGNORE="$(PIP_AUDIT_IGNORE)" $(PY) scripts/dependency_audit.py

# Benchmarks on throwaway PostgreSQL (figures printed, not a pass/fail test); see bench/README.md.
bench: $(VENV)/.installed-dev
	$(PY) scripts/testenv.py -- $(PY) bench/run.py $(BENCH_ARGS)

smoke: $(VENV)/.installed-dev
	$(PY) scripts/smoke.py

check-deploy: $(VENV)/.installed-run
	DJANGO_SETTINGS_MODULE=config.settings.production SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))') \
	ALLOWED_HOSTS=ott.example DATABASE_URL=$${DATABASE_URL:-postgres://localhost/ottbss} REDIS_URL=$${REDIS_URL:-redis://localhost:6379/0} \
	$(PY) manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) data staticfiles *.egg-info
