# ComputeLoop — everyday commands.
#
#   make run         start the portal on http://127.0.0.1:$(PORT) with the embedded defaults
#   make test        run the whole test suite on every core (extra pytest options: PYTEST_ARGS="...")
#   make test-shifted  the date-sensitive modules again with the frozen clock 400 days ahead
#   make bench       run the benchmarks (bench/__main__.py)
#   make clean-db    delete the embedded SQLite database and everything else under var/
#
# The virtualenv lives in .venv; requirements are reinstalled only when a requirements file
# changes (stamp files inside .venv record the last install). They are installed by uv (pinned,
# itself installed into the venv by pip): on this 2-core machine it installs requirements-dev.txt
# into a new venv in about 6 s with a cold cache (about 10 s with the bytecode compiled, below),
# where pip took about 56 s of every CI run.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
PYTEST_ARGS ?=
# pytest-xdist: one worker per core and one more (each worker migrates its databases once), work
# stealing between them. The browser and PostgreSQL tests spend much of their time waiting on
# Chromium, Streamlit or the server: on this 2-core machine 3 workers with --dist worksteal ran the
# suite in 489 s where 2 with the default distribution took 597 s (same commit, machine otherwise idle).
# tests/conftest.py orders the run for work stealing: the browser tests at the start of two workers'
# shares, so neither finishes long after the others.
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
PYTEST_DIST ?= worksteal
# The modules whose rules read "today" (lifecycle, provisioning, green channel, reclaim, reports,
# notices, demo): .ci/run runs them a second time with the frozen clock moved 400 days ahead, so a
# test that writes a calendar date instead of one relative to tests/support/clock.py fails at once.
DATE_SENSITIVE := tests/unit/test_lifecycle_*.py tests/unit/test_reclaim_*.py tests/unit/test_report_*.py \
	tests/unit/test_warning_rules.py tests/unit/test_queue.py \
	tests/integration/test_lifecycle_services.py tests/integration/test_provisioning_*.py \
	tests/integration/test_green_channel.py tests/integration/test_approval_race.py \
	tests/integration/test_reclaim.py tests/integration/test_expiry_notices_smtp.py \
	tests/integration/test_report*.py tests/integration/test_cli_report.py tests/integration/test_training_results.py \
	tests/integration/test_notifications.py tests/integration/test_demo_*.py
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
# --compile-bytecode: pip writes the .pyc files at install, uv only when asked. Without them the
# first import of each of ~1,500 modules (streamlit, pandas, kubernetes, ...) compiles it, in every
# pytest-xdist worker, Streamlit server and CLI subprocess that gets there before a .pyc is written.
# With them the install takes about 4 s more (14 s in all into a new venv).
INSTALL := $(UV) pip install --quiet --compile-bytecode --python $(PY)

RUNTIME_STAMP := $(VENV)/.requirements.stamp
DEV_STAMP := $(VENV)/.requirements-dev.stamp

.DEFAULT_GOAL := help
.PHONY: help run test test-shifted bench clean-db

help:
	@echo "make run | make test [PYTEST_ARGS=...] | make test-shifted | make bench | make clean-db"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(UV): | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-input uv==$(UV_VERSION)

$(RUNTIME_STAMP): requirements.txt | $(UV)
	$(INSTALL) -r requirements.txt
	@touch $@

# requirements-dev.txt includes requirements.txt (-r), so either file changing reinstalls.
$(DEV_STAMP): requirements-dev.txt requirements.txt | $(UV)
	$(INSTALL) -r requirements-dev.txt
	@touch $@ $(RUNTIME_STAMP)

run: $(RUNTIME_STAMP)
	$(PY) -m core db upgrade
	$(PY) -m core demo seed
	$(PY) -m core demo metrics --days 62 --step 900
	$(PY) -m core demo history
	$(PY) -m core demo board
	COMPUTELOOP_AUTH=$${COMPUTELOOP_AUTH:-demo} $(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT)

# No `-` prefix and no `|| true`: pytest's non-zero exit (1 failures, 2 interrupted,
# 5 no tests collected, ...) fails `make test`.
test: $(DEV_STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist $(PYTEST_DIST) $(PYTEST_ARGS)

# On SQLite only (-k "not postgresql" deselects the PostgreSQL half of each database test): what a
# calendar date breaks does not depend on the database, and `make test` runs both.
test-shifted: $(DEV_STAMP)
	COMPUTELOOP_TEST_CLOCK_SHIFT_DAYS=400 $(PY) -m pytest -n $(PYTEST_WORKERS) --dist $(PYTEST_DIST) -k "not postgresql" $(DATE_SENSITIVE) $(PYTEST_ARGS)

bench: $(DEV_STAMP)
	@if [ -f bench/__main__.py ]; then \
		$(PY) -m bench; \
	else \
		echo "bench/__main__.py does not exist yet: no benchmarks to run"; \
	fi

clean-db:
	rm -rf var/
