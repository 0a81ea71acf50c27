"""Request validation: every problem becomes a 422 listing each bad field (never a 500).

Hand-written rather than a schema library: five small functions are quicker to read
than a model definition, and cost a few µs a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import orjson

from perf.api.errors import ApiError

MAX_BIGINT = 2**63 - 1
MAX_PRICE = Decimal("9999999999.99")  # numeric(12, 2)
MAX_IMAGES = 20
MAX_PER_PAGE = 100


@dataclass(frozen=True)
class Paging:
    """A validated list request: ``after`` is the keyset cursor (None: use ``page``)."""

    page: int
    per_page: int
    category: int | None
    after: int | None


def _field(name: str, message: str, value: Any = None) -> dict[str, Any]:
    if isinstance(value, str) and len(value) > 100:
        value = value[:100] + "..."  # never echo a huge input back
    elif isinstance(value, (list, dict)):
        value = None
    return {"field": name, "message": message, "value": value}


def invalid(errors: list[dict[str, Any]]) -> ApiError:
    """The 422 for ``errors`` (a list of ``{"field", "message", "value"}``)."""
    return ApiError(422, "validation failed: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                    errors=errors)


def _int_param(query: Mapping[str, str], name: str, low: int, high: int, errors: list[dict[str, Any]]) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        errors.append(_field(name, f"must be an integer in {low}..{high}", raw))
        return None
    if not low <= value <= high:
        errors.append(_field(name, f"must be in {low}..{high}", value))
        return None
    return value


def parse_paging(query: Mapping[str, str]) -> Paging:
    """``page`` ≥ 1 (default 1), ``per_page`` 1..100 (default 20), optional ``category`` and ``after`` ids."""
    errors: list[dict[str, Any]] = []
    page = _int_param(query, "page", 1, 10_000_000, errors)
    per_page = _int_param(query, "per_page", 1, MAX_PER_PAGE, errors)
    category = _int_param(query, "category", 1, 2**31 - 1, errors)
    after = _int_param(query, "after", 0, MAX_BIGINT, errors)
    if errors:
        raise invalid(errors)
    return Paging(page=page or 1, per_page=per_page or 20, category=category, after=after)


def parse_id(raw: Any, name: str = "id") -> int:
    """A path id: 404 if it cannot name a row (not an integer, or outside 1..2**63-1)."""
    try:
        value = int(str(raw), 10)
    except ValueError:
        raise ApiError(404, f"{name}={raw!r} is not a product id (ids are positive integers)") from None
    if not 1 <= value <= MAX_BIGINT:
        raise ApiError(404, f"no product with {name}={value}")
    return value


def parse_json(body: bytes) -> Any:
    """Decode a JSON body (400 with the parser's message when it is not JSON)."""
    if not body:
        raise ApiError(400, "the request body is empty: send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None


def _name(data: Mapping[str, Any], errors: list[dict[str, Any]]) -> str | None:
    name = data.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200 or "\x00" in name:
        errors.append(_field("name", "must be a string of 1..200 characters (no NUL)", name))
        return None
    return name.strip()


def _price(data: Mapping[str, Any], errors: list[dict[str, Any]]) -> Decimal | None:
    raw = data.get("price")
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        errors.append(_field("price", "must be a number >= 0 with at most 2 decimals", raw))
        return None
    try:
        price = Decimal(str(raw))
    except InvalidOperation:
        price = None
    if price is None or not price.is_finite() or price < 0 or price > MAX_PRICE or price != price.quantize(Decimal("0.01")):
        errors.append(_field("price", f"must be a number in 0..{MAX_PRICE} with at most 2 decimals", raw))
        return None
    return price.quantize(Decimal("0.01"))


def _category(data: Mapping[str, Any], errors: list[dict[str, Any]]) -> int | None:
    raw = data.get("category_id")
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 2**31 - 1:
        errors.append(_field("category_id", "must be the integer id of an existing category", raw))
        return None
    return raw


def _images(data: Mapping[str, Any], errors: list[dict[str, Any]]) -> list[str] | None:
    raw = data.get("image_urls", [])
    if not isinstance(raw, list) or len(raw) > MAX_IMAGES:
        errors.append(_field("image_urls", f"must be a list of at most {MAX_IMAGES} URLs", None))
        return None
    for i, url in enumerate(raw):
        parts = urlsplit(url) if isinstance(url, str) and len(url) <= 2000 and "\x00" not in url else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            errors.append(_field(f"image_urls[{i}]", "must be an http(s) URL of at most 2000 characters", url))
            return None
    return list(raw)


def _description(data: Mapping[str, Any], errors: list[dict[str, Any]]) -> str | None:
    raw = data.get("description")
    if raw is not None and (not isinstance(raw, str) or len(raw) > 10_000 or "\x00" in raw):
        errors.append(_field("description", "must be a string of at most 10000 characters (no NUL) or null", None))
    return raw


_KNOWN = {"name", "price", "category_id", "image_urls", "description"}
_CHECKS = {"name": _name, "price": _price, "category_id": _category, "image_urls": _images,
           "description": _description}


def validate_product(data: Any, *, partial: bool = False) -> dict[str, Any]:
    """Validate a create (all of name, price, category_id required) or a PATCH (``partial``: any subset).

    Returns the cleaned fields; raises 422 listing every problem.
    """
    if not isinstance(data, dict):
        raise invalid([_field("body", "must be a JSON object", type(data).__name__)])
    errors = [_field(k, "unknown field", None) for k in data if k not in _KNOWN]
    if not partial:
        errors += [_field(k, "is required", None) for k in ("name", "price", "category_id") if k not in data]
    elif not data:
        errors.append(_field("body", f"name at least one field to change: {sorted(_KNOWN)}", None))
    cleaned: dict[str, Any] = {}
    for key, check in _CHECKS.items():
        if key in data:
            cleaned[key] = check(data, errors)
    if errors:
        raise invalid(errors)
    return cleaned
