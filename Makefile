# DVC Integrations — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# checkov (infra policy checks) lives in its own venv: its pins must not constrain the project's
CHECKOV_VENV ?= .venv-checkov
CHECKOV      := $(CHECKOV_VENV)/bin/checkov

.PHONY: run demo test lint chaos bench bench-quick clean install system autoscaling redis-cluster

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==3.3.30

## system packages the tests and the local stack use (SoftHSM2, poppler-utils, fonts, Chromium...): only what is missing
system:
	bash scripts/setup-system.sh

install: system $(STAMP) $(CHECKOV)

## the local stack (embedded Redis when REDIS_URL is unset), a short demo, then up until Ctrl-C
run: system $(STAMP)
	$(BIN)/dvci dev --demo

## the same demo, then exit (0 when it worked)
demo: system $(STAMP)
	$(BIN)/dvci demo

## every test (real Redis: REDIS_URL, or the embedded one)
test: system $(STAMP) $(CHECKOV)
	DVCI_CHECKOV=$(CHECKOV) $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

## 10,000+ events through dvci dev with provider faults, a Redis restart and a process kill
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .dvci .pytest_cache .mypy_cache .ruff_cache *.egg-info

## performance: hello vs floor, latency at 250/500/1000 ev/s, throughput + CPU split, 2 workers, Redis Cluster,
## naive stack, cold starts, the other functions (prints a table, writes bench/results.json)
bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick

## Knative autoscaling from the last `make bench`: writes infra/autoscaling.json, sets the manifests to it
autoscaling: $(STAMP)
	$(BIN)/python -m bench.autoscale

## a 3-master Redis Cluster on loopback until Ctrl-C (prints its redis+cluster:// URL for REDIS_URL)
redis-cluster: $(STAMP)
	$(BIN)/python -m tests.cluster

## the cost of the audit trail and of citizen-data encryption per event (bench/audit.py)
bench-audit: $(STAMP)
	$(BIN)/python -m bench.audit

## fuzzing, time-boxed (FUZZ_SECONDS in total): hypothesis property tests over every event model and webhook,
## atheris harnesses of the parsers (hypothesis when atheris has no wheel here), schemathesis on docs/openapi.yaml
FUZZ_SECONDS ?= 600
.PHONY: fuzz
fuzz: $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[fuzz]' || echo "fuzz: no atheris here: hypothesis drives the byte harnesses"
	$(BIN)/python -m fuzz --seconds $(FUZZ_SECONDS)

## the LGSP phase alone: backlog drain at 50 req/s, steady-state sync lag (bench/lgsp.py)
bench-lgsp: $(STAMP)
	$(BIN)/python -m bench.lgsp
