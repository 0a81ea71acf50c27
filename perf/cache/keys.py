"""Cache keys: namespaced, and built from a call's bound arguments.

The seed's ``cache_key(prefix, *args)`` ignored keyword arguments, so ``f(1, page=2)``
and ``f(1, page=3)`` shared one entry. :func:`call_key` binds positional and keyword
arguments to the signature and applies its defaults, so ``f(1)``, ``f(1, 2)`` and
``f(x=1, page=2)`` (with ``page=2`` the default) all give one key.
"""

from __future__ import annotations

import hashlib
import inspect
import string
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


_SIMPLE_KINDS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class KeyPlan:
    """How to turn a call of ``func`` into its cache key, worked out once (at decoration).

    :func:`bound_arguments` binds the signature on every call (``inspect.signature`` +
    ``bind`` + ``apply_defaults``: ~15 µs, more than an L1 hit). For a function whose
    parameters are all plain positional-or-keyword ones, the plan maps positional values
    to names with one ``zip``, fills defaults from a dict and checks keyword names
    against a set; anything unusual (``*args``, ``**kwargs``, keyword-only parameters, a
    call that does not match) takes the full ``bind``, so keys and errors stay the same.

    >>> plan = KeyPlan(list_products, template="products:{category}:{page}")
    >>> plan.key(plan.arguments(("books",), {}))
    'products:books:1'
    """

    def __init__(self, func: Callable[..., Any], *, template: str | None = None, skip_self: bool = True) -> None:
        self.func = func
        self.template = template
        self.skip_self = skip_self
        signature = inspect.signature(func)
        params = list(signature.parameters.values())
        self._names = tuple(p.name for p in params)
        self._skip = self._names[0] if skip_self and self._names and self._names[0] in _SKIPPED_FIRST else None
        self._simple = all(p.kind in _SIMPLE_KINDS for p in params)
        self._keywords = frozenset(p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self._defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
        # _tails[k]: the defaults completing a call with k positional arguments (None: some are required)
        self._tails: list[dict[str, Any] | None] = [
            {n: self._defaults[n] for n in self._names[k:]} if all(n in self._defaults for n in self._names[k:])
            else None for k in range(len(self._names) + 1)]
        self._prefix = f"{func.__module__}.{func.__qualname__}"
        self._positional = _positional_template(template, self._names) if self._simple else None
        self._tail_values: list[tuple[Any, ...] | None] = [
            None if t is None else tuple(t.values()) for t in self._tails]

    def key_of(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        """The key of calling with ``args`` and ``kwargs``: ``key(arguments(args, kwargs))``, and for a
        template key and positional arguments, without building the arguments dict at all."""
        if self._positional is not None and not kwargs and len(args) <= len(self._names):
            tail = self._tail_values[len(args)]
            if tail is not None:
                return self._positional.format(*args, *tail)
        return self.key(self.arguments(args, kwargs))

    def arguments(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The call's arguments by name, defaults applied, ``self``/``cls`` left out
        (the same as :func:`bound_arguments`; a call that does not match raises TypeError)."""
        names = self._names
        if self._simple and len(args) <= len(names):
            arguments = dict(zip(names, args, strict=False))
            if not kwargs:
                tail = self._tails[len(args)]
                if tail is not None:
                    arguments.update(tail)
                    if self._skip is not None:
                        del arguments[self._skip]
                    return arguments
            elif self._keywords.issuperset(kwargs) and arguments.keys().isdisjoint(kwargs):
                arguments.update(kwargs)
                for name in names:
                    if name not in arguments and name in self._defaults:
                        arguments[name] = self._defaults[name]
                if len(arguments) == len(names):
                    if self._skip is not None:
                        del arguments[self._skip]
                    return arguments
        return bound_arguments(self.func, args, kwargs, skip_self=self.skip_self)  # raises TypeError on a mismatch

    def key(self, arguments: Mapping[str, Any]) -> str:
        """The key for already computed ``arguments`` (see :func:`format_key`)."""
        if self.template is None:
            return self._prefix + SEPARATOR + _digest(arguments)
        try:
            return self.template.format_map(arguments)
        except (KeyError, IndexError):
            return format_key(self.func, arguments, template=self.template)  # raises the explained error


def _positional_template(template: str | None, names: tuple[str, ...]) -> str | None:
    """``"p:{pid}"`` as ``"p:{1}"`` (indexes into the call's values), or None if a field is not a plain name."""
    if template is None:
        return None
    parts: list[str] = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        parts.append(literal.replace("{", "{{").replace("}", "}}"))
        if field is None:
            continue
        if spec or conversion or field not in names:
            return None
        parts.append(f"{{{names.index(field)}}}")
    return "".join(parts)


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
