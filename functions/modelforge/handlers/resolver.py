"""The HTTP API's resolver: Powertools' routing, responses and exception handlers, with the request validation,
the OpenAPI document and the Swagger page loaded only when a request needs them.

Powertools' own validation (``enable_validation=True``) imports its OpenAPI machinery at every cold start
(``openapi.params``, ``compat``, ``dependant``, ``encoders``), and its parameter markers (``Query``, ``Path``,
``Header``) are part of it. Here the markers are plain records of their arguments (the same arguments), and
each route validates its path, query, header and body values with pydantic models built from its signature on
its first call, raising Powertools' ``RequestValidationError`` with the errors Powertools' middleware gives
(same ``loc``, ``msg``, ``type``, same order: path, query, header, body; tests/unit/test_api_validation.py
compares the two). Answers are serialized as Powertools' response validation does (the return annotation's
type, ``mode="json"``, by alias). The OpenAPI document is Powertools' own, generated on first demand by a
second resolver, with validation on, whose routes carry the same signatures with Powertools' markers
(``_documentation``, ``with_powertools_markers``); the Swagger page is registered on its first request.

No `from __future__ import annotations`, as in the handlers: signatures are read at run time.
"""

import inspect
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.exception_handling import ExceptionHandlerManager
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

# Field arguments of Powertools' markers that only shape the document (pydantic's Field does not take them).
_DOCUMENT_ONLY = ("convert_underscores", "include_in_schema", "openapi_examples")
_JSON = "application/json"
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


class Param:
    """Where a route parameter is read from, with Powertools' marker arguments (``pattern``, ``ge``, ``alias``,
    ``description``, ...): ``Annotated[int, Query(ge=1)]``, as with Powertools' markers."""

    location = ""

    def __init__(self, **options: Any) -> None:
        self.options = options

    def alias(self, name: str) -> str:
        return str(self.options.get("alias") or name)

    def field_options(self, name: str) -> dict[str, Any]:
        options = {k: v for k, v in self.options.items() if k not in _DOCUMENT_ONLY}
        return {**options, "alias": self.alias(name)}


class Query(Param):
    location = "query"


class Path(Param):
    location = "path"


class Header(Param):
    location = "header"

    def alias(self, name: str) -> str:
        # Powertools' default (convert_underscores): idempotency_key is read from the idempotency-key header.
        return str(self.options.get("alias") or name.replace("_", "-")).lower()


@dataclass(frozen=True)
class _Body:
    name: str
    adapter: Any  # pydantic TypeAdapter
    required: bool
    default: Any


@dataclass(frozen=True)
class _RouteSpec:
    """How one route's arguments are read and checked, and its answer serialized: built on its first call."""

    params: dict[str, tuple[type[BaseModel], list[tuple[str, str]]]]  # location -> (model, [(alias, name)])
    body: _Body | None
    returns: Any  # a TypeAdapter of the return annotation, or None

    @classmethod
    def of(cls, func: Callable[..., Any], rule: str) -> "_RouteSpec":
        from pydantic import Field, TypeAdapter, create_model

        path_names = set(re.findall(r"<(\w+)>", rule))
        fields: dict[str, dict[str, Any]] = {}
        names: dict[str, list[tuple[str, str]]] = {}
        body = None
        for p in inspect.signature(func).parameters.values():
            annotation, marker = _split(p.annotation)
            default = ... if p.default is inspect.Parameter.empty else p.default
            if marker is None and p.name not in path_names and _is_model(annotation):
                body = _Body(p.name, TypeAdapter(annotation), default is ..., default)
                continue
            marker = marker or (Path() if p.name in path_names else Query())
            options = marker.field_options(p.name)
            fields.setdefault(marker.location, {})[p.name] = (annotation, Field(default, **options))
            names.setdefault(marker.location, []).append((options["alias"], p.name))
        params = {location: (create_model(f"{func.__name__}_{location}", **spec), names[location])
                  for location, spec in fields.items()}
        return cls(params=params, body=body, returns=_return_adapter(func))


def _split(annotation: Any) -> tuple[Any, Param | None]:
    """``Annotated[T, Query(...)]`` -> ``(T, the marker)``; anything else -> ``(annotation, None)``."""
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        markers = [m for m in metadata if isinstance(m, Param)]
        others = [m for m in metadata if not isinstance(m, Param)]
        if markers:
            return (Annotated[(base, *others)] if others else base), markers[0]
    return annotation, None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _return_adapter(func: Callable[..., Any]) -> Any:
    from pydantic import TypeAdapter

    returned = inspect.signature(func).return_annotation
    if returned is inspect.Signature.empty:
        return None
    if get_origin(returned) is tuple and len(get_args(returned)) == 2:  # (body, status), as Powertools reads it
        returned = get_args(returned)[0]
    return TypeAdapter(returned)


def _prefixed(error: ValidationError, *prefix: Any) -> list[dict[str, Any]]:
    return [{**e, "loc": (*prefix, *e["loc"])} for e in error.errors()]


class LazyExceptionHandlers(ExceptionHandlerManager):
    """Powertools' exception handler registry, plus handlers for classes named by module and name: they apply
    once their module has been imported (an error of a class never imported cannot be raised), so mapping an
    error of a utility loaded on first use does not import the utility at every cold start."""

    def __init__(self, registered: Mapping[type[Exception], Callable[..., Any]]) -> None:
        super().__init__()
        self.update_exception_handlers(registered)
        self._by_name: list[tuple[str, str, Callable[..., Any]]] = []

    def exception_handler_by_name(self, module: str, *names: str) -> Callable[[Callable[..., Any]], Any]:
        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            self._by_name.extend((module, name, func) for name in names)
            return func
        return register

    def lookup_exception_handler(self, exp_type: type) -> Callable[..., Any] | None:
        handler = super().lookup_exception_handler(exp_type)
        for module_name, name, func in self._by_name if handler is None else ():
            module = sys.modules.get(module_name)
            if module is not None and issubclass(exp_type, getattr(module, name)):
                return func
        return handler


def lazy_exception_handlers(app: APIGatewayHttpResolver) -> LazyExceptionHandlers:
    """The app's handler registry, made one that also takes handlers by class name (for any resolver: the
    predict function's is Powertools' own)."""
    if not isinstance(app.exception_handler_manager, LazyExceptionHandlers):
        app.exception_handler_manager = LazyExceptionHandlers(app.exception_handler_manager.get_registered_handlers())
    return app.exception_handler_manager


class LazyResolver(APIGatewayHttpResolver):
    """``route``/``get``/``post`` and ``enable_swagger`` as Powertools', with validation of this module's
    markers on each call; ``get_openapi_schema`` as Powertools' with validation on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._swagger: tuple[str, dict[str, Any]] | None = None
        self._routes: list[tuple[str, Any, tuple[Any, ...], dict[str, Any], Callable[..., Any]]] = []
        self._docs: APIGatewayHttpResolver | None = None
        lazy_exception_handlers(self)

    def route(self, rule: str, method: Any, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        register = super().route(rule, method, *args, **kwargs)

        def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
            self._routes.append((rule, method, args, kwargs, func))
            register(self._validated(func, rule))
            return func
        return decorate

    def _validated(self, func: Callable[..., Any], rule: str) -> Callable[..., Any]:
        specs: list[_RouteSpec] = []

        def call(**path_values: str) -> Any:
            if not specs:
                specs.append(_RouteSpec.of(func, rule))
            spec = specs[0]
            result = func(**self._arguments(spec, path_values))
            if spec.returns is None:
                return result
            if isinstance(result, tuple) and len(result) == 2:
                return _serialized(spec.returns, result[0]), result[1]
            return _serialized(spec.returns, result)

        call.__name__ = func.__name__
        return call

    def _arguments(self, spec: _RouteSpec, path_values: Mapping[str, str]) -> dict[str, Any]:
        """The route's arguments, validated; RequestValidationError with every error otherwise."""
        received = {"path": path_values, "query": self._query(), "header": self._headers()}
        arguments: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for location in ("path", "query", "header"):
            if location not in spec.params:
                continue
            model, names = spec.params[location]
            given = {alias: received[location][alias] for alias, _ in names if alias in received[location]}
            try:
                validated = model.model_validate(given)
            except ValidationError as error:
                errors.extend(_prefixed(error, location))
                continue
            arguments.update({name: getattr(validated, name) for _, name in names})
        if spec.body is not None:
            arguments.update(self._body_argument(spec.body, errors))
        if errors:
            raise RequestValidationError(errors)
        return arguments

    def _query(self) -> dict[str, Any]:
        """As Powertools reads them: a name repeated in the query string is a list (API Gateway joined its values
        with commas), any other value the string as sent."""
        event = self.current_event
        repeated = {name for name, values in parse_qs(event.get("rawQueryString") or "",
                                                      keep_blank_values=True).items() if len(values) > 1}
        return {name: value.split(",") if name in repeated else value
                for name, value in (event.get("queryStringParameters") or {}).items()}

    def _headers(self) -> dict[str, Any]:
        return {name.lower(): value for name, value in (self.current_event.get("headers") or {}).items()}

    def _body_argument(self, body: _Body, errors: list[dict[str, Any]]) -> dict[str, Any]:
        value = self._body()
        if value is None:
            if body.required:
                errors.append({"type": "missing", "loc": ("body",), "msg": "Field required", "input": None})
                return {}
            return {body.name: body.default}
        if isinstance(value, list) and value:  # Powertools takes a list's first item for a non-list body
            value = value[0]
        try:
            return {body.name: body.adapter.validate_python(value, from_attributes=True)}
        except ValidationError as error:
            errors.extend(_prefixed(error, "body"))
            return {}

    def _body(self) -> Any:
        """The body, parsed by its content type as Powertools does (a JSON body of another media type never gets
        here: ``http_errors.resolve_json`` answers 415 first)."""
        import json

        event = self.current_event
        content_type = event.headers.get("content-type", "").strip()
        if not content_type or content_type.startswith(_JSON):
            try:
                return event.json_body
            except json.JSONDecodeError as error:
                raise RequestValidationError([{"type": "json_invalid", "loc": ("body", error.pos),
                                               "msg": "JSON decode error", "input": {},
                                               "ctx": {"error": error.msg}}], body=error.doc) from error
        if content_type.startswith(_FORMS):
            return parse_qs(event.decoded_body or "", keep_blank_values=True)
        raise RequestUnsupportedContentType("Unsupported content type", errors=[{
            "type": "unsupported_content_type", "loc": ("body",), "msg": f"Unsupported content type: {content_type}",
            "input": {}, "ctx": {}}])

    # ------------------------------------------------------------ documentation, built when asked for

    def get_openapi_schema(self, **options: Any) -> Any:
        return self._documentation().get_openapi_schema(**options)

    def _documentation(self) -> APIGatewayHttpResolver:
        """A resolver with validation on and the same routes, their signatures carrying Powertools' markers:
        Powertools generates the document from it as it did from the API's own."""
        if self._docs is None:
            from aws_lambda_powertools.event_handler.openapi import params

            docs = APIGatewayHttpResolver(enable_validation=True)
            for rule, method, args, kwargs, func in self._routes:
                docs.route(rule, method, *args, **kwargs)(with_powertools_markers(func, params))
            self._docs = docs
        return self._docs

    def enable_swagger(self, *, path: str = "/swagger", **options: Any) -> None:
        self._swagger = (path, options)  # registered on its first request (Powertools imports its models at once)

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        if self._swagger is not None and str(event.get("rawPath") or "").rstrip("/").endswith(self._swagger[0]):
            path, options = self._swagger
            self._swagger = None
            super().enable_swagger(path=path, **options)
        return super().resolve(event, context)


def _serialized(adapter: Any, value: Any) -> Any:
    """As Powertools' response validation: the value checked against the return annotation, then dumped."""
    try:
        checked = adapter.validate_python(value, from_attributes=True)
    except ValidationError as error:
        raise RequestValidationError(_prefixed(error, "response"), body=value) from error
    return adapter.dump_python(checked, mode="json", by_alias=True)


def with_powertools_markers(func: Callable[..., Any], params: Any) -> Callable[..., Any]:
    """``func`` with its signature's markers replaced by Powertools' own (``params``: Powertools' module of
    them), so that a Powertools resolver with validation on documents it, and would validate it, as before."""
    signature = inspect.signature(func)

    def marked(annotation: Any) -> Any:
        base, marker = _split(annotation)
        if marker is None:
            return annotation
        return Annotated[base, getattr(params, type(marker).__name__)(**marker.options)]

    def route(**arguments: Any) -> Any:
        return func(**arguments)

    route.__name__, route.__doc__ = func.__name__, func.__doc__
    route.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p.replace(annotation=marked(p.annotation)) for p in signature.parameters.values()])
    return route
