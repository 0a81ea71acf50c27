"""Exceptions raised by :mod:`perf.cache`."""

from __future__ import annotations


class CacheError(Exception):
    """Base class for cache errors."""


class CacheUnavailable(CacheError):
    """Redis could not be reached (or answered too slowly) and the cache is fail-closed."""


class SerializationError(CacheError):
    """A value could not be encoded, or bytes read from Redis could not be decoded or verified."""
