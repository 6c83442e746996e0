# Baton: two commands get a fresh clone running (`make run`) and tested (`make test`).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KAFKA := deploy/kafka/kafka.sh
# uv installs exactly what uv.lock pins (`--locked` also fails when the lock is stale for
# pyproject.toml); uv itself is pinned here and bootstrapped with pip into .cache/uv.
UV_VERSION := 0.13.9
UV := .cache/uv/bin/uv
export UV_PYTHON_DOWNLOADS := never

.PHONY: help install deps venv lock upgrade kafka-fetch run stop status logs reload-map test test-unit \
	lint typecheck bench demo clean image image-lint k8s deploy-check ops ops-check

help:
	@echo "make run      start Kafka, the four services, Prometheus and Alertmanager (installs what is missing)"
	@echo "make stop     stop everything 'make run' started"
	@echo "make status   what is running"
	@echo "make reload-map  check deploy/process-map.yaml and put it in force (no restart)"
	@echo "make test     the whole test suite against a real Kafka broker"
	@echo "make bench    benchmarks (print their figures)"
	@echo "make demo     run Baton on the BPI Challenge 2013 log: generated map, baton import, results"
	@echo "make lint     ruff + mypy"
	@echo "make ops      regenerate Prometheus rules, Alertmanager routes, Grafana dashboards from deploy/process-map.yaml"
	@echo "make lock     re-resolve uv.lock after editing pyproject.toml"
	@echo "make upgrade  upgrade every pinned dependency (a deliberate act: review, test, commit)"
	@echo "make clean    stop everything and delete the broker's data and .run/"
	@echo "make image    build the container image (needs a Docker engine)"
	@echo "make k8s      regenerate deploy/k8s/ (after editing deploy/k8s/render.py)"
	@echo "make deploy-check  lint the image, validate compose and k8s offline"

install: venv kafka-fetch

deps:
	@deploy/system-deps.sh

venv: $(VENV)/.installed

$(UV):
	$(PYTHON) -m venv .cache/uv
	.cache/uv/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock | deps $(UV)
	$(UV) sync --locked --extra dev --python $(PYTHON) --quiet
	@touch $@

lock: $(UV)  ## after editing dependencies in pyproject.toml: re-resolve uv.lock (minimal changes)
	$(UV) lock --python $(PYTHON)

upgrade: $(UV)  ## the deliberate act: move every pin to the newest allowed version
	$(UV) lock --upgrade --python $(PYTHON)
	@echo "uv.lock upgraded: review 'git diff uv.lock' (holidays data moves deadlines), run make test, commit"

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

reload-map:
	@deploy/run.sh reload-map

test: install
	$(BIN)/pytest

test-unit: venv
	$(BIN)/pytest tests/unit

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy baton shared services/intake services/sla services/routing services/metrics

ops: venv  ## after editing deploy/process-map.yaml: regenerate deploy/prometheus, alertmanager, grafana
	$(BIN)/python -m metrics.ops generate deploy/process-map.yaml

ops-check: venv  ## what CI checks: the committed files are what the map generates
	$(BIN)/pytest -q tests/ops

bench: install
	@deploy/bench.sh

DATASET ?= ../shared/datasets/VINST-new.csv

demo: install  ## DATASET=path/to/VINST-new.csv: (re)starts make run's system with the BPI map
	@deploy/demo.sh "$(DATASET)"

IMAGE := baton:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

image:  ## one image for the four services: docker run $(IMAGE) intake|routing|sla|metrics
	docker build -f deploy/Dockerfile -t $(IMAGE) .

image-lint: venv
	$(BIN)/hadolint deploy/Dockerfile

k8s: venv  ## deploy/k8s/*.yaml and deploy/kustomization.yaml are written by deploy/k8s/render.py
	$(BIN)/python deploy/k8s/render.py

deploy-check: venv  ## the image, compose and k8s checks of the suite, without a Docker engine
	$(BIN)/pytest -q tests/unit/test_deploy_image.py tests/unit/test_deploy_compose.py tests/unit/test_deploy_k8s.py

clean: stop
	@$(KAFKA) clean || true
	rm -rf .run
