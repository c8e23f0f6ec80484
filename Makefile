# One entry point for humans and CI. `make demo` and `make test` are the README's quick start;
# `make check` runs lint, types and tests; .ci/run (CI) runs the same plus the deployment check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SAMPLE ?= sample
STATE  ?= $(SAMPLE)/state.sqlite

.PHONY: venv demo test lint typecheck check bench clean

$(BIN)/cloudtrail-anomaly: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/cloudtrail-anomaly

## Generate a sample organization trail, learn its history, replay its last week, show alerts.
demo: venv
	rm -rf $(SAMPLE)
	$(BIN)/python scripts/generate_sample.py --out $(SAMPLE)
	$(BIN)/cloudtrail-anomaly baseline $(SAMPLE)/history --state $(STATE)
	$(BIN)/cloudtrail-anomaly replay $(SAMPLE)/live --state $(STATE) --output $(SAMPLE)/alerts.jsonl
	$(BIN)/python scripts/show_alerts.py $(SAMPLE)/alerts.jsonl

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

check: lint typecheck test

bench: venv
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) $(SAMPLE) .pytest_cache .mypy_cache .ruff_cache .hypothesis
