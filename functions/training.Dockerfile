# The training function's image: the Lambda Python base image plus the same modelforge package the zip
# functions and the tests use, with its training extras. Every third-party package comes from locks/training.txt
# (made by `make lock` from pyproject.toml and constraints.txt, for this base image's Python) and is checked
# against its hashes; the package itself is installed without dependencies and without a build environment of its
# own, by the setuptools of locks/tools.txt.
#
# The base is pinned by digest, not by the mutable `3.12` tag, so every rebuild starts from the same bytes.
# The digest is the one public records give for public.ecr.aws/lambda/python:3.12 (the multi-architecture index);
# it could not be pulled where it was pinned (no Docker engine, public.ecr.aws not reachable): `make pin-base-image`
# re-resolves the tag to its current digest with `docker buildx imagetools inspect` and rewrites this line.
#
# Two targets from one set of layers: `lambda` (the last stage, so the default that `sam build` builds for the
# training functions) and `batch` (`docker build --target batch`, pushed as BatchImageUri), the same image with
# the Lambda runtime's entrypoint cleared, since a Batch job definition sets a command but cannot replace an
# entrypoint, and /lambda-entrypoint.sh would take `python -m modelforge.batch` for a handler name.
FROM public.ecr.aws/lambda/python:3.12@sha256:0628ddc11919f85f4261517d356392dbbc6b3181568d87a376ae2e814464c230 AS base

COPY locks/tools.txt locks/training.txt /build/locks/
RUN pip install --no-cache-dir --require-hashes -r /build/locks/tools.txt \
    && pip install --no-cache-dir --require-hashes -r /build/locks/training.txt

COPY pyproject.toml README.md /build/
COPY functions/modelforge /build/functions/modelforge
RUN pip install --no-cache-dir --no-deps --no-build-isolation /build \
    && rm -rf /build

FROM base AS batch
ENTRYPOINT []
CMD ["python3", "-m", "modelforge.batch"]

FROM base AS lambda
CMD ["modelforge.handlers.training.lambda_handler"]
