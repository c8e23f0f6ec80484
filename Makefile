# One entry point for humans and CI. `make demo` and `make test` are the README's quick start;
# `make check` runs lint, types and tests; .ci/run (CI) runs the same plus the deployment check.
#
# Everything is installed from the lock: pip installs uv (requirements/uv.txt, pinned with
# hashes), and uv installs the project and every dependency exactly as uv.lock lists them.
# A machine needs nothing but Python (3.11-3.13) and make.
#
# Bytecode is compiled at install (uv's --compile-bytecode for the dependencies, compileall for
# this package, installed editable): where Python may not write it (PYTHONDONTWRITEBYTECODE, a
# read-only checkout), every run of the CLI would compile ~75 modules again, 0.18 s of its 0.33 s
# start. An edited module is compiled again when it runs (the .pyc's timestamp no longer matches).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
SAMPLE ?= sample
STATE  ?= $(SAMPLE)/state.sqlite
# uv: use $(PYTHON), never download one; the project's environment is $(VENV).
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: venv demo test faults lint typecheck check bench lock test-latest python-version clean

python-version:
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v < (3, 14) else f"cloudtrail-anomaly supports Python 3.11 to 3.13; {sys.executable} is {v[0]}.{v[1]} (set PYTHON=python3.12, say)")'

$(UV): requirements/uv.txt
	@$(MAKE) --no-print-directory python-version
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/uv.txt
	touch $@

$(BIN)/cloudtrail-anomaly: pyproject.toml uv.lock $(UV)
	@$(MAKE) --no-print-directory python-version
	@$(UV) lock --check --offline --quiet 2>/dev/null || { echo "uv.lock is out of date with pyproject.toml: run 'make lock' and commit uv.lock" >&2; exit 2; }
	$(UV) sync --frozen --all-extras --python $(PYTHON) --quiet --compile-bytecode
	$(BIN)/python -m compileall -q layers/core/src >/dev/null
	touch $@

venv: $(BIN)/cloudtrail-anomaly

## Generate a sample organization trail, learn its history, replay its last week, show alerts
## (and write them as one HTML page, sample/report.html).
demo: venv
	rm -rf $(SAMPLE)
	$(BIN)/python scripts/generate_sample.py --out $(SAMPLE)
	$(BIN)/cloudtrail-anomaly baseline $(SAMPLE)/history --state $(STATE)
	$(BIN)/cloudtrail-anomaly replay $(SAMPLE)/live --state $(STATE) --output $(SAMPLE)/alerts.jsonl
	$(BIN)/cloudtrail-anomaly report $(SAMPLE)/alerts.jsonl -o $(SAMPLE)/report.html
	$(BIN)/python scripts/show_alerts.py $(SAMPLE)/alerts.jsonl

test: venv
	$(BIN)/python -m pytest

## The fault suite alone (it is part of `make test` too); writes docs/reliability.md.
faults: venv
	WRITE_RELIABILITY=1 $(BIN)/python -m pytest -m faults tests/test_faults.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

check: lint typecheck test

bench: venv
	$(BIN)/python scripts/bench.py

## Refresh the lock to the newest releases pyproject.toml allows (then run `make test` and
## commit uv.lock and requirements/ with the reason).
lock: $(UV)
	$(UV) lock --upgrade
	$(UV) pip compile requirements/uv.in --universal --generate-hashes --quiet -o requirements/uv.txt
	$(BIN)/python scripts/export_layer_requirements.py --uv $(UV)

## The suite against the newest release of every dependency, ignoring the lock and
## [tool.uv]'s constraints, in a separate venv: shows what an upgrade would break. Not in CI.
test-latest: $(UV)
	UV=$(UV) PYTHON=$(PYTHON) bash scripts/test_latest.sh

clean:
	rm -rf $(VENV) $(TOOLS) .venv-latest $(SAMPLE) .pytest_cache .mypy_cache .ruff_cache .hypothesis
