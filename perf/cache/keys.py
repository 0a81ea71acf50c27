"""Cache keys: namespaced, and built from a call's bound arguments.

The seed's ``cache_key(prefix, *args)`` ignored keyword arguments, so ``f(1, page=2)``
and ``f(1, page=3)`` shared one entry. :func:`call_key` binds positional and keyword
arguments to the signature and applies its defaults, so ``f(1)``, ``f(1, 2)`` and
``f(x=1, page=2)`` (with ``page=2`` the default) all give one key.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import orjson

SEPARATOR = ":"
_SKIPPED_FIRST = ("self", "cls")


def make_key(*parts: object) -> str:
    """Join parts with ``:`` (``make_key("product", 42)`` → ``"product:42"``)."""
    if not parts:
        raise ValueError("make_key() needs at least one part, e.g. make_key('product', product_id)")
    return SEPARATOR.join(str(part) for part in parts)


def bound_arguments(func: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any],
                    *, skip_self: bool = True) -> dict[str, Any]:
    """The call's arguments by parameter name, defaults applied; ``self``/``cls`` left out.

    Raises :class:`TypeError` (from :meth:`inspect.Signature.bind`) if the call does not
    match the signature, exactly as calling the function would.
    """
    signature = inspect.signature(func)
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    params = list(signature.parameters)
    if skip_self and params and params[0] in _SKIPPED_FIRST:
        arguments.pop(params[0], None)
    for name, param in signature.parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD and name in arguments:
            arguments.update(arguments.pop(name))
    return arguments


def _digest(arguments: Mapping[str, Any]) -> str:
    try:
        encoded = orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=repr)
    except TypeError as exc:
        raise TypeError(f"cannot build a cache key from arguments {arguments!r}: {exc}; "
                        "pass key='...{name}...' to @cached") from exc
    return hashlib.blake2b(encoded, digest_size=12).hexdigest()


def call_key(func: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], *,
             template: str | None = None, skip_self: bool = True) -> str:
    """The cache key of calling ``func(*args, **kwargs)``.

    With ``template`` (e.g. ``"product:{product_id}"``) the key is the template formatted
    with the bound arguments; otherwise it is ``module.qualname:<digest of the arguments>``.
    """
    return format_key(func, bound_arguments(func, args, kwargs, skip_self=skip_self), template=template)


def format_key(func: Callable[..., Any], arguments: Mapping[str, Any], *, template: str | None = None) -> str:
    """The key for ``func`` called with already-bound ``arguments`` (see :func:`call_key`)."""
    if template is not None:
        try:
            return template.format(**arguments)
        except (KeyError, IndexError) as exc:
            raise ValueError(
                f"key template {template!r} names {exc} which is not a parameter of "
                f"{func.__qualname__}{inspect.signature(func)}; use one of {sorted(arguments)}"
            ) from exc
    return make_key(f"{func.__module__}.{func.__qualname__}", _digest(arguments))
