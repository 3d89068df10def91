"""modelforge: serverless failure-prediction model training.

One first-party package shared by the API functions, the training image, the local cloud and the tests.
Domain code lives in ``modelforge.domain`` (pure pandas/numpy/xgboost, no AWS), data access in
``modelforge.adapters`` (boto3), use cases in ``modelforge.logic`` and Lambda entry points in
``modelforge.handlers``.
"""

__version__ = "0.1.0"
