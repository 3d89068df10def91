# modelforge: the two set-up commands are `make run` and `make test`; everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PY     := $(BIN)/python

# The SAM CLI, in an environment of its own (its pins differ from constraints.txt's).
SAM_VENV  := build/sam-cli
SAM_STAMP := $(SAM_VENV)/.installed
SAM       := $(SAM_VENV)/bin/sam

.PHONY: install run test test-unit test-integration test-e2e lint package package-check lock pin-base-image bench bench-predict bench-features bench-load bench-cmapss bench-gpu bench-coldstart bench-fleet build deploy clean

# Every install is from a hashed lock (locks/, made by `make lock`); the package itself goes in without deps.
$(STAMP): pyproject.toml constraints.txt locks/tools.txt locks/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r locks/tools.txt
	$(BIN)/pip install --quiet --require-hashes -r locks/dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

$(SAM_STAMP): locks/tools.txt locks/sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --require-hashes -r locks/tools.txt
	$(SAM_VENV)/bin/pip install --quiet --require-hashes -r locks/sam.txt
	touch $(SAM_STAMP)

install: $(STAMP)

## run: start the local cloud (moto + Step Functions + the real handlers) with demo data, API on :3000
run: $(STAMP)
	$(BIN)/modelforge-local

## test: the whole suite (unit, integration on moto, e2e against a local cloud, the packaged imports) plus lint, in random order
## (pytest-randomly; the seed is printed first and last: `make test PYTEST_ARGS=--randomly-seed=N` repeats an
## order, PYTEST_ARGS="-p no:randomly" runs in file order), with the 15 slowest tests listed at the end; on two
## workers (pytest-xdist), a module's tests on one of them (tests/conftest.py: pytest_xdist_make_scheduler)
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2
test: $(STAMP) lint package
	$(BIN)/pytest -q -p randomly -n $(PYTEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

test-integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

test-e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check functions localcloud tests benchmarks modelforge_cli
	$(BIN)/cfn-lint template.yaml --append-rules cfn_lint_serverless.rules
	$(BIN)/mypy functions/modelforge localcloud modelforge_cli
	$(BIN)/lint-imports

## package: `sam build` of the zip functions and their layer into build/package (no Docker; needs the runtime's Python)
package: $(STAMP) $(SAM_STAMP)
	$(PY) -m tests.package.build --sam $(SAM)

## package-check: each zip function's handler imported from its built package alone (tests/package)
package-check: package
	$(BIN)/pytest -q tests/package

## lock: regenerate locks/ (and the layer's requirements.txt) from pyproject.toml and constraints.txt (needs PyPI)
lock: $(STAMP)
	$(PY) -m tests.package.locks $(BIN)/uv

## pin-base-image: re-resolve the training image's base tag to its current digest and pin it (needs Docker buildx)
BASE_TAG := public.ecr.aws/lambda/python:3.12
pin-base-image:
	digest=$$(docker buildx imagetools inspect $(BASE_TAG) --format '{{json .Manifest}}' \
	  | python3 -c 'import json, sys; print(json.load(sys.stdin)["digest"])') \
	&& sed -i -E "s|^FROM $(BASE_TAG)[^ ]*|FROM $(BASE_TAG)@$$digest|" functions/training.Dockerfile

## bench: training pipeline vs the seed-faithful baseline (benchmarks/results/training.json, ~10 min)
bench: $(STAMP)
	$(PY) -m benchmarks.training

bench-predict: $(STAMP)
	$(PY) -m benchmarks.predict

bench-features: $(STAMP)
	$(PY) -m benchmarks.features

bench-load: $(STAMP)
	$(PY) -m benchmarks.load

## bench-coldstart: cold import of the API and predict handlers vs boto3 + pydantic alone (benchmarks/results/coldstart.json)
bench-coldstart: $(STAMP)
	$(PY) -m benchmarks.coldstart

## bench-cmapss: NASA C-MAPSS FD001 and FD002 imported, trained and scored through the API (benchmarks/results/cmapss.json)
bench-cmapss: $(STAMP)
	$(PY) -m benchmarks.cmapss

## bench-fleet: the same 200,000 rows imported and trained as 10 and as 1,000 machines on the local cloud, per stage (benchmarks/results/fleet.json)
bench-fleet: $(STAMP)
	$(PY) -m benchmarks.fleet

## bench-gpu: the CUDA training path against the CPU path on a GPU machine (benchmarks/results/gpu.json)
bench-gpu: $(STAMP)
	$(PY) -m benchmarks.gpu --cmapss ../shared/datasets/cmapss-fd001/train_FD001.txt

## build / deploy: AWS SAM, the CLI pinned in locks/sam.txt (the training image needs Docker)
build: $(SAM_STAMP)
	$(SAM) build

deploy: build
	$(SAM) deploy $(if $(ENV),--config-env $(ENV),)

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .localcloud build
