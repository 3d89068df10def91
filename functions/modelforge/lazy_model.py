"""The base of the API's, the jobs' and the registry's pydantic models: each model's validator and serializer
are built the first time it is used, not when its module is imported.

A cold start imports every model of the API (30-odd, a fifth of the handler's own import time), while one
request uses two or three of them. ``defer_build`` moves each model's schema build to its first validation,
serialization or JSON-schema generation; nothing else about a model changes.
"""

from pydantic import BaseModel, ConfigDict


class LazyModel(BaseModel):
    model_config = ConfigDict(defer_build=True)
