"""The HTTP API's resolver: Powertools' own, except that its Swagger UI route is registered when first asked for.

Powertools' ``enable_swagger`` imports its OpenAPI models at once (60 ms on an idle core, 200 ms on a busy
one): a cold start of every request would pay for a page only people browsing the docs load. The models are
imported by the two routes that need them, ``/swagger`` (registered here on its first request) and
``/openapi.json`` (Powertools imports them when it generates the document). Validation does not need them.

No `from __future__ import annotations`, as in the handlers: Powertools reads annotations at run time.
"""

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.typing import LambdaContext


class LazySwaggerResolver(APIGatewayHttpResolver):
    """``enable_swagger`` takes the same arguments and serves the same page, built on the first request for it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._swagger: tuple[str, dict[str, Any]] | None = None

    def enable_swagger(self, *, path: str = "/swagger", **options: Any) -> None:
        self._swagger = (path, options)

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        if self._swagger is not None and str(event.get("rawPath") or "").rstrip("/").endswith(self._swagger[0]):
            path, options = self._swagger
            self._swagger = None
            super().enable_swagger(path=path, **options)
        return super().resolve(event, context)
