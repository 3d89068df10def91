"""Data access: the only modules that talk to AWS. Logic receives these classes, so tests can hand it fakes.

Every client is created by boto3 from the environment, so AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_<SERVICE>)
points the same code at real AWS, LocalStack or the local moto server.
"""
