# Baton: two commands get a fresh clone running (`make run`) and tested (`make test`).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KAFKA := deploy/kafka/kafka.sh

.PHONY: help install deps venv kafka-fetch run stop status logs test test-unit lint typecheck bench clean

help:
	@echo "make run      start Kafka and the four services (installs what is missing)"
	@echo "make stop     stop everything 'make run' started"
	@echo "make status   what is running"
	@echo "make test     the whole test suite against a real Kafka broker"
	@echo "make bench    benchmarks (print their figures)"
	@echo "make lint     ruff + mypy"

install: venv kafka-fetch

deps:
	@deploy/system-deps.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml | deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

kafka-fetch: deps
	@$(KAFKA) fetch

run: install
	@deploy/run.sh start

stop:
	@deploy/run.sh stop

status:
	@deploy/run.sh status

logs:
	@tail -n 50 .run/logs/*.log

test: install
	$(BIN)/pytest

test-unit: venv
	$(BIN)/pytest tests/unit

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services/intake services/sla services/routing services/metrics

bench: install
	@deploy/bench.sh

clean: stop
	@$(KAFKA) clean || true
	rm -rf .run
