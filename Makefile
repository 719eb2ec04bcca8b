# Two commands on a fresh machine: `make run` and `make test`. Each bootstraps .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test system-deps lint typecheck pytest configmap bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench,embedded]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m bot run

test: system-deps lint typecheck pytest

# Debian packages some tests need (sshd for the SSH certificate tests); see tests/system.py.
system-deps:
	@scripts/system-deps

lint: $(STAMP)
	$(BIN)/ruff check bot tests bench
	$(BIN)/ruff format --check bot tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

# manifests/kubernetes/configmap.yaml holds a copy of policies.yaml; rewrite it after a change.
configmap:
	$(PY) scripts/sync-configmap

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
