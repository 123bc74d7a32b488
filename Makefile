# Parity — every target bootstraps .venv on a fresh clone, then delegates to the real command.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
STAMP := $(VENV)/.installed
export PARITY_DATA_DIR ?= $(CURDIR)/data
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export FEAST_USAGE := False

# Demo data size: 2 ≈ 4,800 customers / 140k transactions. At 1 the held-out period has too few
# customers to separate the models' PR-AUC intervals (README, "Why the demo uses SCALE=2").
SCALE ?= 2
SEED ?= 42
END_DATE ?=
DRIFT_CLIENT ?=
PYTEST_ARGS ?=
# Guards to let through on a deliberate change: ALLOW=acme:customers_lost,bolt:raw_rows
ALLOW ?=
comma := ,
# PROFILE=scale runs the same targets on dbt-spark, Feast's Spark offline store, Redis and a
# PostgreSQL registry (start the local services first: make services-up). parity.config decides.
PROFILE ?=
ifneq ($(PROFILE),)
export PARITY_PROFILE := $(PROFILE)
endif

##@ Setup
# A .venv that is a symlink is another checkout's (a git worktree sharing it): installing from
# here would point its editable install at this checkout, so it is left to its owner.
$(STAMP): pyproject.toml
	@if [ -L $(VENV) ]; then echo "$(VENV) is shared (a symlink): not reinstalling from this checkout" >&2; else \
	  test -x $(PYTHON) || $(PY) -m venv $(VENV); \
	  $(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]' && touch $(STAMP); fi

setup: $(STAMP) ## Create .venv and install the project (done automatically by every target)

help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target> [SCALE=2 SEED=42 ...]\n"} \
	  /^##@/ {printf "\n%s\n", substr($$0, 5)} \
	  /^[a-zA-Z_-]+:.*?##/ {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Services (scale profile)
services-up: $(STAMP) ## Start Redis and PostgreSQL on 127.0.0.1 (data in data/services; idempotent)
	$(PYTHON) -m parity.services up

services-down: $(STAMP) ## Stop the Redis and PostgreSQL started by services-up (by PID; data kept)
	$(PYTHON) -m parity.services down

##@ Data
data: $(STAMP) ## Generate the raw client drops under data/raw (SCALE, SEED, END_DATE, DRIFT_CLIENT)
	$(PYTHON) -m parity.ingest.datagen --out $(PARITY_DATA_DIR)/raw --scale $(SCALE) --seed $(SEED) \
	  $(if $(END_DATE),--end-date $(END_DATE)) $(if $(DRIFT_CLIENT),--drift-client $(DRIFT_CLIENT))

build: $(STAMP) ## Check raw files, dbt build into data/builds/<id>, publish only if all passed (ALLOW=client:metric,...)
	$(PYTHON) -m parity build $(foreach a,$(subst $(comma), ,$(ALLOW)),--allow-guard $(a))

build-incremental: $(STAMP) ## Add the appended raw records to a copy of the published build (DuckDB; else builds everything, saying why)
	$(PYTHON) -m parity build --incremental $(foreach a,$(subst $(comma), ,$(ALLOW)),--allow-guard $(a))

rollback-build: $(STAMP) ## Publish the previous build again (then `make apply materialize`)
	$(PYTHON) -m parity rollback-build

reconcile: $(STAMP) ## Print the reconciliation and quarantine tables of the published build
	$(PYTHON) -m parity reconcile

.PHONY: cross-engine
cross-engine: $(STAMP) ## Build the raw drops on DuckDB and on Spark, compare every table (rows, values, types)
	$(PYTHON) -m parity cross-engine

##@ Features (Feast)
apply: $(STAMP) ## Register the Feast definitions derived from the dbt manifest (feast apply)
	$(PYTHON) -m parity apply

materialize: $(STAMP) ## Load the newest features into the online store (incremental, idempotent)
	$(PYTHON) -m parity materialize

features: build apply materialize ## dbt build + apply + materialize

parity: $(STAMP) ## Prove online == offline point-in-time, for every entity, value and type
	$(PYTHON) -m parity parity

events-push: $(STAMP) ## Push a file of events (FILE=events.jsonl): validated, logged, fresh features online
	$(PYTHON) -m parity events push $(FILE)

docs: $(STAMP) ## dbt docs (lineage raw -> marts) and the feature catalogue, under data/docs
	$(PYTHON) -m parity docs

##@ Models
train: $(STAMP) ## Train, compare and register the churn model (promotes only if none is current)
	$(PYTHON) -m training train $(if $(CONFIG),--config $(CONFIG))

promote: $(STAMP) ## Make a model version current: make promote VERSION=v0002
	$(PYTHON) -m training promote $(VERSION) $(if $(REASON),--reason "$(REASON)")

approve: $(STAMP) ## Record an approval (needed to promote/canary): make approve VERSION=v0002 APPROVER=name ACK=fairness:client_id,...
	$(PYTHON) -m training approve $(VERSION) --approver "$(APPROVER)" --ack "$(ACK)" $(if $(NOTE),--note "$(NOTE)")

rollback: $(STAMP) ## Point current back at the previously current model
	$(PYTHON) -m training rollback $(if $(REASON),--reason "$(REASON)")

models: $(STAMP) ## List registered model versions (* = current)
	$(PYTHON) -m training list

serve: $(STAMP) ## Run the prediction API on 127.0.0.1:8000 (HOST/PORT, WORKERS=N processes; keys: PARITY_API_KEYS)
	$(PYTHON) -m serving $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT)) $(if $(WORKERS),--workers $(WORKERS))

##@ Batch and monitoring
segments: $(STAMP) ## Fit, register and promote the customer segments model (after `make train`)
	$(PYTHON) -m batch segments train

score: $(STAMP) ## Score every customer (AS_OF=ISO; default materialization time) -> data/scores, data/exports, dbt customer_scores
	$(PYTHON) -m batch score $(if $(AS_OF),--as-of $(AS_OF))
	$(PYTHON) -m parity build --select path:models/scores

monitor: $(STAMP) ## Drift, prediction drift, performance, freshness -> data/reports/monitoring; exit 3 on alert (RETRAIN=1)
	$(PYTHON) -m monitoring $(if $(RETRAIN),--retrain)

consistency: $(STAMP) ## Logged predictions vs offline point-in-time features per feature -> data/reports/consistency; exit 3 over the threshold
	$(PYTHON) -m monitoring.consistency

##@ Governance and privacy
trace: $(STAMP) ## Every place holding a customer's data + access-request export: make trace CUSTOMER=acme:AC-000123
	$(PYTHON) -m parity trace "$(CUSTOMER)" $(if $(OUT),--out $(OUT))

forget: $(STAMP) ## (admin) Erase a customer everywhere the platform controls, then prove it: make forget CUSTOMER=acme:AC-000123 BY=name
	$(PYTHON) -m parity forget "$(CUSTOMER)" $(if $(BY),--by "$(BY)")

retention: $(STAMP) ## Delete logs/decisions/quarantine samples/builds older than parity/governance/config.yaml (dry run; APPLY=1 deletes)
	$(PYTHON) -m parity retention $(if $(APPLY),--apply)

risk-register: $(STAMP) ## Write a model version's risk register: make risk-register VERSION=v0002 (RETIRE="reason" archives it)
	$(PYTHON) -m parity risk-register $(VERSION) $(if $(RETIRE),--retire "$(RETIRE)")

share-profile: $(STAMP) ## A client's per-segment figures, small groups suppressed: make share-profile CLIENT=acme (DP=1 EPSILON=0.5)
	$(PYTHON) -m parity share-profile $(CLIENT) $(if $(DP),--dp) $(if $(EPSILON),--epsilon $(EPSILON))

##@ Main job
demo: $(STAMP) ## End to end: data -> dbt build -> Feast -> parity -> train -> serve a few predictions
	$(MAKE) --no-print-directory data
	$(MAKE) --no-print-directory features
	$(MAKE) --no-print-directory parity
	$(MAKE) --no-print-directory train
	$(MAKE) --no-print-directory segments
	$(MAKE) --no-print-directory score
	$(PYTHON) -m serving.smoke
	$(PYTHON) -m serving.events_demo
	$(PYTHON) -m monitoring.consistency
	$(PYTHON) -m monitoring || test $$? -eq 3

##@ Quality
test: $(STAMP) ## The default test suite (code, data, parity; groups heavy and scale left out); "no tests" counts as failure
	@$(PYTHON) -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-fast: $(STAMP) ## Code tests only: no dbt build, no server, no bench (markers data/server/bench)
	@$(PYTHON) -m pytest -m "not data and not server and not bench" $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-heavy: $(STAMP) ## The heavy group (pytest -m heavy): multi-build checks and the bench smoke, run by CI after make test
	@$(PYTHON) -m pytest -m heavy $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "error: pytest collected no heavy tests" >&2; exit 1; fi; exit $$rc

# the scale extra (dbt-spark, pyspark, redis, psycopg) on top of dev, installed once
SCALE_STAMP := $(VENV)/.installed-scale
$(SCALE_STAMP): $(STAMP) pyproject.toml
	@if [ -L $(VENV) ]; then echo "$(VENV) is shared (a symlink): not installing the scale extra from this checkout" >&2; else \
	  $(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev,scale]' && touch $(SCALE_STAMP); fi

test-scale: $(SCALE_STAMP) ## The scale group (pytest -m scale): dbt on Spark, Feast on Spark/Redis/PostgreSQL; needs Java
	@$(PYTHON) -m pytest -m scale $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "error: pytest collected no scale tests" >&2; exit 1; fi; exit $$rc

bench: $(STAMP) ## Benchmarks vs raw DuckDB/SQLite and plain Feast -> bench/results (SIZE=tiny|default|large; PROFILE=scale: scale vs embedded stores)
	$(if $(filter scale,$(PROFILE)),$(PYTHON) -m bench.scale --out bench/results,$(PYTHON) -m bench --size $(or $(SIZE),default) --out bench/results)

lint: $(STAMP) ## Ruff over the Python packages
	$(BIN)/ruff check parity training serving batch monitoring bench feature_repo tests

clean: ## Remove generated data (data/) — raw drops included
	rm -rf $(PARITY_DATA_DIR)

.PHONY: setup help data build rollback-build reconcile apply materialize features parity events-push docs train promote approve rollback models serve segments score monitor consistency trace forget retention risk-register share-profile demo test test-fast test-heavy test-scale bench lint clean
