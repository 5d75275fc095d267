# AudiaPro call-data pipeline. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# State (warehouse, spool, stack run files, Prefect's database with the tenants) lives in the one
# home every entry point uses: $AUDIAPRO_HOME, default ~/.audiapro, Prefect's in $AUDIAPRO_HOME/prefect
# unless PREFECT_HOME is set (audiapro/home.py). Nothing here overrides it: `make demo`, `make up` and
# `.venv/bin/audiapro` run from any directory see the same tenants and warehouse.
# The temporary local Prefect API (no PREFECT_API_URL) migrates a fresh database on its first start:
# on a slow or busy machine that takes longer than Prefect's default 20 s wait.
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120

.PHONY: venv demo test lint typecheck pytest bench bench-scale clean up down

venv:
	@scripts/bootstrap.sh

demo: venv
	@$(BIN)/audiapro demo

# ruff (style, absolute imports, Prefect imported lazily), the import contracts between the rooms
# ([tool.importlinter] in pyproject.toml), and no absolute machine paths in any file.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/python scripts/check-no-machine-paths.py

typecheck: venv
	$(BIN)/mypy

pytest: venv
	@scripts/ensure-browser.sh
	scripts/with-postgres.sh $(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

test: venv lint typecheck pytest

bench: venv
	scripts/with-postgres.sh bash -c '$(BIN)/python bench/import_bench.py && $(BIN)/python bench/backfill_bench.py'

# Poll ticks of 1/100/1000 simulated PBXs through real deployments and 1 or 2 workers, then 30 min of
# live-call freshness on the real schedule (docs/benchmarks.md "Scale"). SCALE_ARGS passes options,
# e.g. SCALE_ARGS="--freshness-minutes 10".
bench-scale: venv
	scripts/with-postgres.sh $(BIN)/python bench/scale_bench.py $(SCALE_ARGS)

# Stops a running local stack first. Keeps the state home ($AUDIAPRO_HOME: tenants, warehouse); removes
# what older versions kept in the checkout (.audiapro/, .prefect/).
clean: down
	rm -rf .venv .tools .audiapro .prefect

# Local stack: Prefect server + UI on 127.0.0.1:4200, deployments, worker, live demo PBX (audiapro/ops/stack.py).
# `make up PREFECT_DB=postgres` runs the Prefect server on a local Postgres cluster (kept in the state
# home, stopped by `make down`); PREFECT_DB=postgresql+asyncpg://... uses an existing server.
up: venv
	@$(if $(PREFECT_DB),AUDIAPRO_PREFECT_DB='$(PREFECT_DB)' )$(BIN)/python -m audiapro.ops.stack up

# Stops everything `make up` started (PIDs in $AUDIAPRO_HOME/run/); needs no virtualenv.
down:
	@$(if $(wildcard $(BIN)/python),$(BIN)/python,python3) -m audiapro.ops.stack down
