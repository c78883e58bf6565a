# securebuild: every target runs the same idempotent setup first (scripts/setup.sh).
SHELL := /bin/bash
VENV := .venv/bin
PYTEST := $(VENV)/python -m pytest
ANSIBLE_FILES := $(wildcard roles/*/ playbooks/*.yml)

.PHONY: setup demo test test-unit test-integration test-e2e molecule lint format

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

test: setup
	$(PYTEST) tests

test-unit: setup
	$(PYTEST) -m unit tests

test-integration: setup
	$(PYTEST) -m integration tests

test-e2e: setup
	$(PYTEST) -m e2e tests

# Role scenarios against a real project VM (converge, idempotence, verify); about 8 minutes here.
molecule: setup
	PATH="$(CURDIR)/$(VENV):$$PATH" $(VENV)/molecule test

lint: setup
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	$(VENV)/lint-imports
	$(VENV)/yamllint -s .
	@# the runner adapter's modules (securebuild_live_command) are on ANSIBLE_LIBRARY at run time
	@if [ -n "$(ANSIBLE_FILES)" ]; then PATH="$(CURDIR)/$(VENV):$$PATH" ANSIBLE_LIBRARY="$(CURDIR)/securebuild/runner/ansible/modules" ANSIBLE_ACTION_PLUGINS="$(CURDIR)/securebuild/runner/ansible/action" $(VENV)/ansible-lint --profile production $(ANSIBLE_FILES); fi

format: setup
	$(VENV)/ruff check --fix .
	$(VENV)/ruff format .
