# Two commands on a fresh machine: `make demo` and `make check`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= data

# The store's tests run against this PostgreSQL database too; if it does not answer, `make test` starts a
# throwaway cluster from the installed PostgreSQL binaries (scripts/with_test_database.py).
export NAER_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
# Outside data the tests read (SQL on FHIR conformance suite, Synthea, MedCom); never copied into the repo.
export NAER_FIXTURES ?= $(abspath ../shared/fixtures)

.PHONY: demo check lint types test bench bench-views bench-store bench-api bench-mix serve clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	@if [ -f $(DATA)/samsoe/manifest.json ]; then \
		echo "Using the Samsø data set in $(DATA)/samsoe (delete it to generate anew)"; \
	else \
		$(BIN)/naer synth --area samsoe --start 2015-01-01 --end 2024-12-31 --seed 1 --out $(DATA)/samsoe; \
	fi
	$(BIN)/naer synth --report $(DATA)/samsoe

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

types: $(STAMP)
	$(BIN)/mypy src/naer

test: $(STAMP)
	$(BIN)/python scripts/with_test_database.py $(BIN)/pytest

check: lint types test

bench: $(STAMP)
	$(BIN)/python bench/synth_bench.py

# Views on a region sample of about 205,000 citizens (generated into bench/out/r15 if missing: ~10 GB).
bench-views: $(STAMP)
	$(BIN)/python bench/views_bench.py

# Bulk load and export of the Samsø set on PostgreSQL (NAER_TEST_DATABASE_URL; schema naer_bench).
bench-store: $(STAMP)
	$(BIN)/python bench/store_bench.py

# Reads by id over HTTP: naer serve on PostgreSQL (schema naer_bench) driven by wrk (apt-get install wrk).
bench-api: $(STAMP)
	$(BIN)/python bench/api_bench.py

# The clinician mix (70 % reads, 20 % searches, 10 % writes) over HTTP, as bench-api.
bench-mix: $(STAMP)
	$(BIN)/python bench/api_bench.py --mix

# The FHIR API on the embedded SQLite store (data/store.sqlite), http://127.0.0.1:8000/fhir
serve: $(STAMP)
	$(BIN)/naer serve

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
