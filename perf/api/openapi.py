"""``/openapi.json`` from :data:`perf.api.routes.ROUTES` (a table of :class:`RouteSpec`).

Built from the same table that registers the routes, with the limits the validators
enforce (:mod:`perf.api.validation`), so the document cannot claim what the code does
not do. Every error answer has the :data:`ERROR` schema; write routes carry the bearer
scheme that :func:`perf.api.routes.check_token` enforces.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from perf.api.uploads import UPLOAD_TYPES
from perf.api.validation import (
    MAX_BIGINT,
    MAX_CATEGORY,
    MAX_IMAGES,
    MAX_PAGE,
    MAX_PER_PAGE,
    PRICE_PATTERN,
    URL_PATTERN,
)

Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class RouteSpec:
    """One route: what serves it and what :mod:`perf.api.openapi` says about it.

    ``body``: ``"product"`` / ``"product-patch"`` (JSON), ``"bytes"`` (any octets) or None;
    ``query``: the query parameter names (described in :mod:`perf.api.openapi`);
    ``answers``: status code -> description of every answer the route gives.
    """

    method: str
    path: str
    handler: Handler
    answers: Mapping[int, str]
    write: bool = False
    body: str | None = None
    query: tuple[str, ...] = ()
    tags: tuple[str, ...] = field(default=("products",))

    @property
    def summary(self) -> str:
        """The handler's one-line docstring."""
        return (self.handler.__doc__ or "").strip().splitlines()[0]


TITLE = "perf product API"
VERSION = "1.2.0"

FIELD_ERROR = {"type": "object", "required": ["field", "message"],
               "properties": {"field": {"type": "string"}, "message": {"type": "string"}, "value": {}}}
ERROR = {"type": "object", "required": ["error", "status"],
         "properties": {"error": {"type": "string"}, "status": {"type": "integer"},
                        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}}}}
_NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"^[^\x00]*[^\s\x00][^\x00]*$"}
_PRICE = {"oneOf": [{"type": "integer", "minimum": 0, "maximum": 9_999_999_999},
                    {"type": "string", "pattern": PRICE_PATTERN}]}
_CATEGORY = {"type": "integer", "minimum": 1, "maximum": MAX_CATEGORY}
_IMAGES = {"type": "array", "maxItems": MAX_IMAGES,
           "items": {"type": "string", "maxLength": 2000, "pattern": URL_PATTERN}}
_DESCRIPTION = {"type": ["string", "null"], "maxLength": 10_000, "pattern": r"^[^\x00]*$"}
_FIELDS = {"name": _NAME, "price": _PRICE, "category_id": _CATEGORY, "image_urls": _IMAGES,
           "description": _DESCRIPTION}
PRODUCT_CREATE = {"type": "object", "additionalProperties": False, "required": ["name", "price", "category_id"],
                  "properties": _FIELDS}
PRODUCT_PATCH = {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": _FIELDS}
PRODUCT = {"type": "object", "required": ["id", "name", "price", "category_id"],
           "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "price": {"type": "string"},
                          "category_id": {"type": "integer"}, "category": {"type": "string"},
                          "description": {"type": ["string", "null"]},
                          "image_urls": {"type": "array", "items": {"type": "string"}}}}
PAGE = {"type": "object", "required": ["items", "total", "page", "per_page", "pages"],
        "properties": {"items": {"type": "array", "items": {"type": "object"}}, "total": {"type": "integer"},
                       "page": {"type": "integer"}, "per_page": {"type": "integer"}, "pages": {"type": "integer"},
                       "next_after": {"type": ["integer", "null"]}}}
QUERY = {
    "page": ({"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}, "page number (OFFSET paging)"),
    "per_page": ({"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": 20}, "items per page"),
    "category": (_CATEGORY, "only this category's products"),
    "after": ({"type": "integer", "minimum": 0, "maximum": MAX_BIGINT},
              "keyset cursor: products with id > after (the previous page's next_after)"),
}
PATH = {"product_id": ({"type": "integer", "minimum": 1, "maximum": MAX_BIGINT}, "a product id (ASCII digits)"),
        "task_id": ({"type": "string", "maxLength": 100}, "the task id POST /uploads answered")}
_BODIES = {"product": PRODUCT_CREATE, "product-patch": PRODUCT_PATCH}
#: routes answering text: their media type (``/metrics``: the Prometheus text format 0.0.4).
_TEXT = {"/hello": "text/plain", "/metrics": "text/plain"}
_OK_SCHEMAS = {"/products": PAGE, "/products/{product_id}": PRODUCT}
#: answers any route can give: a wrong method, PostgreSQL down.
COMMON = {405: "method not allowed on this path (Allow lists the methods)"}


def _param(name: str, where: str, schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "description": text, "schema": schema}


def _response(spec: RouteSpec, status: int, text: str) -> dict[str, Any]:
    if status == 204:
        return {"description": text}
    if status >= 400:
        schema: dict[str, Any] = {"$ref": "#/components/schemas/Error"}
    elif spec.path in _TEXT:
        return {"description": text, "content": {_TEXT[spec.path]: {"schema": {"type": "string"}}}}
    else:
        schema = PRODUCT if spec.method in ("POST", "PATCH") and spec.path.startswith("/products") else \
            _OK_SCHEMAS.get(spec.path, {"type": "object"})
    return {"description": text, "content": {"application/json": {"schema": schema}}}


def _operation(spec: RouteSpec) -> dict[str, Any]:
    params = [_param(n, "path", *PATH[n]) for n in PATH if "{" + n + "}" in spec.path]
    params += [_param(n, "query", *QUERY[n]) for n in spec.query]
    answers = {**spec.answers, **COMMON}
    if spec.path.startswith("/products") or spec.path == "/health":
        answers.setdefault(503, "PostgreSQL is unavailable (Retry-After)")
    op: dict[str, Any] = {
        "operationId": spec.handler.__name__, "summary": spec.summary, "tags": list(spec.tags),
        "responses": {str(s): _response(spec, s, t) for s, t in sorted(answers.items())},
    }
    if params:
        op["parameters"] = params
    if spec.body in _BODIES:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _BODIES[spec.body]}}}
    elif spec.body == "bytes":
        binary = {"schema": {"type": "string", "format": "binary", "minLength": 1}}
        op["requestBody"] = {"required": True, "content": {media: binary for media in UPLOAD_TYPES}}
    op["security"] = ([{"bearerAuth": []}] if spec.write else
                      [{}, {"bearerAuth": []}] if 401 in spec.answers else [])  # operator routes: loopback or token
    return op


def openapi_document(routes: tuple[RouteSpec, ...]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for spec in routes:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION,
                 "description": "The workbook's product API. Reads are public; writes need the bearer token, "
                                "and so do /metrics and /metrics.json for clients that are not on loopback."},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR, "FieldError": FIELD_ERROR},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "the server's api_token (PERF_API_TOKEN)"}},
        },
    }
