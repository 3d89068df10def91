# The training function's image: the Lambda Python base image plus the same modelforge package the zip
# functions and the tests use, with its training extras, pinned by constraints.txt.
FROM public.ecr.aws/lambda/python:3.12

COPY pyproject.toml README.md constraints.txt /build/
COPY functions/modelforge /build/functions/modelforge
RUN pip install --no-cache-dir --constraint /build/constraints.txt "/build[training]" \
    && rm -rf /build

CMD ["modelforge.handlers.training.lambda_handler"]
