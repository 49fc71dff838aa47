# DVC Integrations — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# checkov (infra policy checks) lives in its own venv: its pins must not constrain the project's
CHECKOV_VENV ?= .venv-checkov
CHECKOV      := $(CHECKOV_VENV)/bin/checkov

.PHONY: run demo test lint chaos bench bench-quick clean install

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==3.3.30

install: $(STAMP) $(CHECKOV)

## the local stack (embedded Redis when REDIS_URL is unset), a short demo, then up until Ctrl-C
run: $(STAMP)
	$(BIN)/dvci dev --demo

## the same demo, then exit (0 when it worked)
demo: $(STAMP)
	$(BIN)/dvci demo

## every test (real Redis: REDIS_URL, or the embedded one)
test: $(STAMP) $(CHECKOV)
	DVCI_CHECKOV=$(CHECKOV) $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

## 10,000+ events through dvci dev with provider faults, a Redis restart and a process kill
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .dvci .pytest_cache .mypy_cache .ruff_cache *.egg-info

## performance: throughput, latency, floor, naive stack, cold start (prints a table, writes bench/results.json)
bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick
