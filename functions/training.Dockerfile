# The training function's image: the Lambda Python base image plus the same modelforge package the zip
# functions and the tests use, with its training extras. Every third-party package comes from locks/training.txt
# (made by `make lock` from pyproject.toml and constraints.txt, for this base image's Python) and is checked
# against its hashes; the package itself is installed without dependencies and without a build environment of its
# own, by the setuptools of locks/tools.txt.
#
# TODO(issue 16): pin the base image by digest, FROM public.ecr.aws/lambda/python:3.12@sha256:<digest>. No digest
# could be read where this was written (no Docker engine, public.ecr.aws not reachable); take it from
# `docker buildx imagetools inspect public.ecr.aws/lambda/python:3.12` (the index digest) and drop the xfail of
# tests/unit/test_locks.py::test_the_training_base_image_is_pinned_by_digest.
FROM public.ecr.aws/lambda/python:3.12

COPY locks/tools.txt locks/training.txt /build/locks/
RUN pip install --no-cache-dir --require-hashes -r /build/locks/tools.txt \
    && pip install --no-cache-dir --require-hashes -r /build/locks/training.txt

COPY pyproject.toml README.md /build/
COPY functions/modelforge /build/functions/modelforge
RUN pip install --no-cache-dir --no-deps --no-build-isolation /build \
    && rm -rf /build

CMD ["modelforge.handlers.training.lambda_handler"]
