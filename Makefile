# Modelport: `make run` to try it, `make test` to check it, `make bench` to measure it.
PYTHON ?= python3.12
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
HOST ?= 127.0.0.1
PORT ?= 8000
MLFLOW_PORT ?= 5000

export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run migrate seed test bench lint format clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv sync --frozen --python $(BIN)/python
	@touch $@

migrate: install
	$(BIN)/python manage.py setup_var
	$(BIN)/python manage.py migrate --no-input

seed: migrate
	$(BIN)/python manage.py seed_demo

run: seed
	@echo "Starting web, worker, beat and MLflow: open http://$(HOST):$(PORT)/ (Ctrl-C stops everything)"
	LOG_FORMAT=$${LOG_FORMAT:-console} HOST=$(HOST) PORT=$(PORT) MLFLOW_PORT=$(MLFLOW_PORT) \
	MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-http://127.0.0.1:$(MLFLOW_PORT)} \
	PORTAL_BASE_URL=$${PORTAL_BASE_URL:-http://$(HOST):$(PORT)} \
	$(BIN)/honcho start -f Procfile

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install
	LOG_LEVEL=WARNING $(BIN)/pytest tests/bench -o python_files='bench_*.py' -s $(PYTEST_ARGS)

# The same checks as .pre-commit-config.yaml, in the order a failure is cheapest to read.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/djlint templates --lint
	@awk 'length > 160 { print FILENAME ":" FNR ": " length " characters (at most 160)"; bad = 1 } \
	     END { exit bad }' $$(find templates -name '*.html')
	$(BIN)/python manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var/broker var/celery-results
