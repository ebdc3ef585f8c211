# ComputeLoop — everyday commands.
#
#   make run         start the portal on http://127.0.0.1:$(PORT) with the embedded defaults
#   make test        run the whole test suite (extra pytest options: PYTEST_ARGS="...")
#   make bench       run the benchmarks (bench/__main__.py)
#   make clean-db    delete the embedded SQLite database and everything else under var/
#
# The virtualenv lives in .venv; requirements are reinstalled only when a requirements file
# changes (stamp files inside .venv record the last install).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
PYTEST_ARGS ?=
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check --no-input

RUNTIME_STAMP := $(VENV)/.requirements.stamp
DEV_STAMP := $(VENV)/.requirements-dev.stamp

.DEFAULT_GOAL := help
.PHONY: help run test bench clean-db

help:
	@echo "make run | make test [PYTEST_ARGS=...] | make bench | make clean-db"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): requirements.txt | $(PY)
	$(PIP_INSTALL) -r requirements.txt
	@touch $@

# requirements-dev.txt includes requirements.txt (-r), so either file changing reinstalls.
$(DEV_STAMP): requirements-dev.txt requirements.txt | $(PY)
	$(PIP_INSTALL) -r requirements-dev.txt
	@touch $@ $(RUNTIME_STAMP)

run: $(RUNTIME_STAMP)
	$(PY) -m core db upgrade
	$(PY) -m core demo seed
	$(PY) -m core demo metrics --days 62 --step 900
	$(PY) -m core demo history
	$(PY) -m core demo board
	COMPUTELOOP_AUTH=demo $(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT)

# No `-` prefix and no `|| true`: pytest's non-zero exit (1 failures, 2 interrupted,
# 5 no tests collected, ...) fails `make test`.
test: $(DEV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(DEV_STAMP)
	@if [ -f bench/__main__.py ]; then \
		$(PY) -m bench; \
	else \
		echo "bench/__main__.py does not exist yet: no benchmarks to run"; \
	fi

clean-db:
	rm -rf var/
