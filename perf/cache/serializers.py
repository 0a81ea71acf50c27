"""Serializers: bytes in Redis, Python values in the caller.

:class:`OrjsonSerializer` is the default: fast, and safe to decode whatever is in Redis.
:class:`SignedPickleSerializer` handles any picklable value but only unpickles bytes whose
HMAC-SHA256 signature verifies, because ``pickle.loads`` of bytes an attacker wrote into
Redis runs the attacker's code. Every ``loads`` raises :class:`SerializationError` on bad
input; the cache turns that into a miss plus a counted error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
from typing import Any, Protocol

import orjson

from perf.cache.errors import SerializationError


class Serializer(Protocol):
    """Turns values into bytes and back. ``loads`` raises :class:`SerializationError`."""

    name: str

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class OrjsonSerializer:
    """JSON through orjson: dicts, lists, str, numbers, bool, None, datetimes (as ISO strings)."""

    name = "orjson"

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` as JSON bytes."""
        try:
            return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        except TypeError as exc:
            raise SerializationError(
                f"value of type {type(value).__name__} is not JSON serializable ({exc}); "
                "convert it to dicts/lists first or use SignedPickleSerializer(secret=...)"
            ) from exc

    def loads(self, data: bytes) -> Any:
        """Decode JSON bytes."""
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise SerializationError(f"cached bytes are not valid JSON: {exc}") from exc


class JsonSerializer:
    """The standard library's json: the baseline orjson is compared with."""

    name = "json"

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` as JSON bytes (datetimes and other objects via ``str``)."""
        try:
            return json.dumps(value, separators=(",", ":"), default=str).encode()
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"value of type {type(value).__name__} is not JSON serializable: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        """Decode JSON bytes."""
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SerializationError(f"cached bytes are not valid JSON: {exc}") from exc


class SignedPickleSerializer:
    """Pickle, signed with HMAC-SHA256: ``signature (32 bytes) + pickle``.

    ``loads`` verifies the signature with :func:`hmac.compare_digest` before it unpickles,
    so only bytes written by someone holding ``secret`` are ever unpickled.
    """

    name = "signed-pickle"
    _DIGEST_SIZE = 32

    def __init__(self, secret: bytes | str) -> None:
        if isinstance(secret, str):
            secret = secret.encode()
        if len(secret) < 16:
            raise ValueError(
                f"secret has {len(secret)} bytes; use at least 16 random bytes (e.g. secrets.token_bytes(32))"
            )
        self._secret = secret

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def dumps(self, value: Any) -> bytes:
        """Pickle ``value`` and prepend its signature."""
        try:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise SerializationError(f"value of type {type(value).__name__} cannot be pickled: {exc}") from exc
        return self._sign(payload) + payload

    def loads(self, data: bytes) -> Any:
        """Verify the signature, then unpickle. Raises :class:`SerializationError` if it does not verify."""
        if len(data) < self._DIGEST_SIZE:
            raise SerializationError(f"cached value has {len(data)} bytes, shorter than its signature")
        signature, payload = data[: self._DIGEST_SIZE], data[self._DIGEST_SIZE :]
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise SerializationError("cached value's signature does not verify: refusing to unpickle it")
        try:
            return pickle.loads(payload)  # noqa: S301 - signature verified above
        except Exception as exc:  # a signed but broken pickle (e.g. a class that moved)
            raise SerializationError(f"signed value could not be unpickled: {exc}") from exc
