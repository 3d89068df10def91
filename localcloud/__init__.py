"""The local cloud: the whole stack on one machine with no AWS account and no Docker.

A moto server executes Step Functions and holds DynamoDB, S3, Lambda and IAM; every resource is created from
template.yaml; Lambda invocations are dispatched to the project's own handlers in worker processes; an HTTP
front on port 3000 turns requests into API Gateway HTTP API (payload 2.0) events for the API function.
"""
