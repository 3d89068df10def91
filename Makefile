# modelforge: the two set-up commands are `make run` and `make test`; everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PY     := $(BIN)/python

.PHONY: install run test test-unit test-integration test-e2e lint bench bench-predict bench-load bench-cmapss bench-gpu build deploy clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint constraints.txt -e ".[training,dev]"
	touch $(STAMP)

install: $(STAMP)

## run: start the local cloud (moto + Step Functions + the real handlers) with demo data, API on :3000
run: $(STAMP)
	$(BIN)/modelforge-local

## test: the whole suite (unit, integration on moto, e2e against a local cloud) plus lint, in random order
## (pytest-randomly; the seed is printed first and last: `make test PYTEST_ARGS=--randomly-seed=N` repeats an
## order, PYTEST_ARGS="-p no:randomly" runs in file order), with the 15 slowest tests listed at the end
PYTEST_ARGS ?=
test: $(STAMP) lint
	$(BIN)/pytest -q -p randomly --durations=15 $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

test-integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

test-e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check functions localcloud tests benchmarks
	$(BIN)/cfn-lint template.yaml --append-rules cfn_lint_serverless.rules
	$(BIN)/mypy functions/modelforge localcloud

## bench: training pipeline vs the seed-faithful baseline (benchmarks/results/training.json, ~10 min)
bench: $(STAMP)
	$(PY) -m benchmarks.training

bench-predict: $(STAMP)
	$(PY) -m benchmarks.predict

bench-load: $(STAMP)
	$(PY) -m benchmarks.load

## bench-cmapss: NASA C-MAPSS FD001 imported, trained and scored through the API (benchmarks/results/cmapss.json)
bench-cmapss: $(STAMP)
	$(PY) -m benchmarks.cmapss

## bench-gpu: the CUDA training path against the CPU path on a GPU machine (benchmarks/results/gpu.json)
bench-gpu: $(STAMP)
	$(PY) -m benchmarks.gpu --cmapss ../shared/datasets/cmapss-fd001/train_FD001.txt

## build / deploy: AWS SAM (needs the SAM CLI and, for the training image, Docker)
build:
	sam build

deploy: build
	sam deploy $(if $(ENV),--config-env $(ENV),)

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .localcloud
