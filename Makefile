# jobyard: `make run` starts a server on SQLite; `make test` runs every check.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run test lint typecheck fuzz chaos bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# Not root and no JOBYARD_RUN_AS: jobs run as you, without isolation (a laptop's quick start;
# jobyard says so loudly). As root, jobs run as the system user jobyard-job.
RUN_AS := $(if $(JOBYARD_RUN_AS),,$(if $(filter 0,$(shell id -u)),,JOBYARD_RUN_AS=server))

run: install
	$(BIN)/jobyard db upgrade
	$(RUN_AS) $(BIN)/jobyard serve

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

# One pytest worker per core (pytest-xdist): most tests wait on servers, processes and
# databases rather than compute; each worker has its own databases and job uids (conftest).
# The tests marked `alone` kill jobyard processes, whose next start stops what their runs
# left on this host: they run afterwards, one at a time (5: none selected).
TEST_WORKERS ?= auto
test: lint typecheck
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m "not alone" $(PYTEST_ARGS)
	$(BIN)/pytest -m alone $(PYTEST_ARGS) || test $$? -eq 5

# The fuzz test of make test with many more examples; what it finds goes to FUZZ_REPORT.
FUZZ_EXAMPLES ?= 300
FUZZ_REPORT ?= var/fuzz-findings.md
fuzz: install
	mkdir -p $(dir $(FUZZ_REPORT))
	JOBYARD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) JOBYARD_FUZZ_REPORT=$(FUZZ_REPORT) \
		$(BIN)/pytest tests/fuzz -p no:cacheprovider --show-capture=no -o timeout=0 $(PYTEST_ARGS)

# The long chaos run against a PostgreSQL fleet (docs/fleet.md, "Chaos testing"); CHAOS_JOBS,
# CHAOS_WORKERS, CHAOS_SLOTS, CHAOS_LEASE, CHAOS_FAULTS and CHAOS_SEED change it.
chaos: install
	$(BIN)/python -m tests.chaos

# QUICK=1: small sizes (under two minutes); PEERS=1: also Celery, RQ, Dramatiq, Procrastinate.
bench: install
	$(BIN)/python -m benchmarks $(if $(QUICK),--quick) $(if $(PEERS),--peers)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
