"""Logger, Tracer and Metrics, created once and imported everywhere else.

Powertools reads its own settings (service name, log level, tracing on/off) from the POWERTOOLS_* variables,
so nothing here reads the environment.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE_NAME = "modelforge"
METRICS_NAMESPACE = "Modelforge"

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
