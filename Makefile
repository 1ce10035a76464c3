# Two commands on a fresh machine: `make demo` and `make check`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= data
PORT ?= 8000

# The store's tests run against this PostgreSQL database too; if it does not answer, `make test` starts a
# throwaway cluster from the installed PostgreSQL binaries (scripts/with_test_database.py).
export NAER_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
# Outside data the tests read (SQL on FHIR conformance suite, Synthea, MedCom); never copied into the repo.
export NAER_FIXTURES ?= $(abspath ../shared/fixtures)

.PHONY: demo check lint types test bench bench-views bench-store bench-api bench-mix bench-indicators bench-risk bench-risk-ceiling serve clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# The running platform on a synthetic Region Midtjylland: Samsø in full (3,700 citizens) beside a
# $(DEMO_SCALE) sample of the region's 18 other municipalities, so that funnel plots, clusters and GP clinics
# have peers. Generate it (once), run the views and indicators on all of it, load Samsø's citizens into the
# FHIR store (the demo's clinicians work on Samsø), then serve the dashboard (/) and the FHIR API (/fhir).
# Each step is redone only when its input changed; delete $(DATA) to start again. Worklists are at /risk.
DEMO_SCALE ?= 0.01
DEMO_AT_LEAST ?= 600
DEMO := $(DATA)/demo

DEMO_DATA := $(DATA)/indicators.parquet $(DATA)/risk/worklist.parquet $(DATA)/risk/tasks.loaded $(DATA)/demo-users.json \
	$(DATA)/evaluation/samsoe-2019/report.html
# The store's load and the indicators and risk model run side by side (two jobs; each one's output shown
# when it ends, so that two progress bars never write over each other).
demo: $(STAMP)
	@$(MAKE) --no-print-directory -j2 --output-sync=target $(DEMO_DATA)
	NAER_DATA_DIR=$(DATA) $(BIN)/naer users demo
	NAER_DATA_DIR=$(DATA) $(BIN)/naer serve --port $(PORT)

# The demo's clock, its named users on Samsø (naer users demo; passwords kept in this file, mode 0600),
# the four beds of Samsø Sundheds- og Akuthus' acute unit (the demo's number) and its live workflows
# (naer coordination demo: advice, follow-up, delegation, care plan, referral, acute beds, as the demo's
# people), and its MedCom messages (naer messages demo: the department's stays told to home care). The
# demo's "today" is the last day of the synthetic data: data/today holds it, and every naer
# command with NAER_DATA_DIR=data (the server, naer token) runs its clock from there. Made again whenever
# the store is loaded again.
DEMO_TODAY ?= 2024-12-31T10:00:00+01:00
$(DATA)/demo-users.json: $(DATA)/store.sqlite
	rm -f $@
	echo $(DEMO_TODAY) > $(DATA)/today
	NAER_DATA_DIR=$(DATA) $(BIN)/naer users demo > /dev/null
	NAER_DATA_DIR=$(DATA) $(BIN)/naer coordination beds muni-0741-acutebeds --beds 4 \
		--url sqlite:///$(abspath $(DATA))/store.sqlite
	NAER_DATA_DIR=$(DATA) $(BIN)/naer coordination demo --url sqlite:///$(abspath $(DATA))/store.sqlite
	NAER_DATA_DIR=$(DATA) $(BIN)/naer messages demo --url sqlite:///$(abspath $(DATA))/store.sqlite

$(DEMO)/manifest.json: | $(STAMP)
	$(BIN)/naer synth --area region-midt --scale $(DEMO_SCALE) --at-least $(DEMO_AT_LEAST) --full 741 --start 2015-01-01 --end 2024-12-31 \
		--seed 1 --out $(DEMO) --force --initiative samsoe-2019

$(DATA)/indicators.parquet: $(DEMO)/manifest.json $(STAMP)
	rm -f $(DATA)/warehouse.duckdb
	$(BIN)/naer indicators --input $(DEMO) --warehouse $(DATA)/warehouse.duckdb \
		--by every --period every --within every --out $@

# The Samsø trial of 2019-2020 (src/naer/evaluation/initiatives/samsoe-2019.yaml) against its counterfactual
# on the demo's data, where its effect is planted (naer synth --initiative) and the truth is known:
# /initiatives shows the register with it, and the whole report.
$(DATA)/evaluation/samsoe-2019/report.html: $(DATA)/indicators.parquet
	$(BIN)/naer evaluate samsoe-2019 --warehouse $(DATA)/warehouse.duckdb --truth $(DEMO)/truth/planted.json \
		--out $(DATA)/evaluation/samsoe-2019

# The risk model (trained on the citizens of 1 January 2018-2022 stacked: one year of a small island holds
# too few admissions for a calibrated model; tested on 2023 against the generator's true hazard) and the
# worklists of Samsø's citizens on the last day of the data, on the warehouse the indicators made.
$(DATA)/risk/model.json: $(DATA)/indicators.parquet
	$(BIN)/naer risk train --warehouse $(DATA)/warehouse.duckdb --model $@ \
		$(foreach y,2018 2019 2020 2021 2022,--reference-date $(y)-01-01)

$(DATA)/risk/report/metrics.json: $(DATA)/risk/model.json
	$(BIN)/naer risk evaluate --input $(DEMO) --warehouse $(DATA)/warehouse.duckdb \
		--model $(DATA)/risk/model.json --out $(DATA)/risk/report

$(DATA)/risk/worklist.parquet: $(DATA)/risk/report/metrics.json
	$(BIN)/naer risk worklist --warehouse $(DATA)/warehouse.duckdb --model $(DATA)/risk/model.json \
		--organization 0741 --organization gp-0741-001 --living-in 741 --top 50 --out $@ --tasks $(DATA)/risk/tasks.ndjson

# The worklists' Tasks in the store, so that the FHIR API (Task?owner=...) and the GP's inbox show them
# (after the demo's users and workflows: one writer of the SQLite store at a time).
$(DATA)/risk/tasks.loaded: $(DATA)/risk/worklist.parquet $(DATA)/store.sqlite $(DATA)/demo-users.json
	$(BIN)/naer load $(DATA)/risk/tasks.ndjson --url sqlite:///$(abspath $(DATA))/store.sqlite
	touch $@

# Samsø's citizens and every organisation (not the region's sample: *.sample.ndjson), loaded into a new
# file first, so that a failed or interrupted load never looks finished.
$(DATA)/store.sqlite: $(DEMO)/manifest.json $(STAMP)
	rm -f $(DATA)/store.loading.sqlite
	$(BIN)/naer load $(filter-out %.sample.ndjson,$(wildcard $(DEMO)/*.ndjson)) \
		--url sqlite:///$(abspath $(DATA))/store.loading.sqlite
	mv $(DATA)/store.loading.sqlite $@

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

# All indicators, every grouping and period, from the views' warehouse of the whole region (generated into
# bench/out/region, gzip, ~3.5 GB, and its warehouse, when missing), and dashboard page times.
bench-indicators: $(STAMP)
	$(BIN)/python bench/indicators_bench.py

# The risk models on the whole region (the same data and warehouse as bench-indicators, made when missing):
# train, evaluate against the oracle and the baselines, worklists, scoring every citizen.
bench-risk: $(STAMP)
	$(BIN)/python bench/risk_bench.py

# How close any model of the record can come to the oracle: the same model told the generator's truths
# (frailty, deterioration, the hazard without them) as features, on bench-risk's data and warehouse.
bench-risk-ceiling: $(STAMP)
	$(BIN)/python bench/risk_ceiling.py

# Bulk load and export of the Samsø set on PostgreSQL (NAER_TEST_DATABASE_URL; schema naer_bench).
bench-store: $(STAMP)
	$(BIN)/python bench/store_bench.py

# Reads by id over HTTP: naer serve on PostgreSQL (schema naer_bench) driven by wrk (apt-get install wrk).
bench-api: $(STAMP)
	$(BIN)/python bench/api_bench.py

# The clinician mix (70 % reads, 20 % searches, 10 % writes) over HTTP, as bench-api.
bench-mix: $(STAMP)
	$(BIN)/python bench/api_bench.py --mix

# The dashboard and the FHIR API on what is in $(DATA) (make demo prepares it), http://127.0.0.1:8000/
serve: $(STAMP)
	NAER_DATA_DIR=$(DATA) $(BIN)/naer serve --port $(PORT)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
