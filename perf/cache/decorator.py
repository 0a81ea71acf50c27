"""``@cached``: cache an async function's results in a :class:`MultiLevelCache`.

>>> @cached(lambda: app.state.cache, ttl=60, key="product:{product_id}", tags=["product:{product_id}"])
... async def get_product(product_id: int) -> dict | None: ...

Keys come from the function's qualified name plus its bound arguments (positional and
keyword, normalized with the signature's defaults, ``self``/``cls`` left out), or from
an explicit ``key`` template formatted with those arguments; tags may be templates too.
``None`` results are not cached unless ``cache_none=True``.

The signature is read once, at decoration (:class:`~perf.cache.keys.KeyPlan`), and tags
are formatted only when a value is stored: an L1 hit through ``@cached`` costs about what
``cache.get`` costs (``python -m perf.bench.cache`` prints the difference).
"""

from __future__ import annotations

import functools
import inspect
import string
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, ParamSpec, TypeVar

from perf.cache.keys import KeyPlan
from perf.cache.multilevel import MultiLevelCache

P = ParamSpec("P")
R = TypeVar("R")
CacheSource = MultiLevelCache | Callable[[], MultiLevelCache]


def _check_template(func: Callable[..., Any], template: str, what: str, skip_self: bool) -> None:
    params = list(inspect.signature(func).parameters)
    if skip_self and params and params[0] in ("self", "cls"):
        params = params[1:]
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None:
            name = field.split(".")[0].split("[")[0]
            if name not in params:
                raise ValueError(f"{what}={template!r} uses {{{field}}} but {func.__qualname__} has no parameter "
                                 f"{name!r}; use one of {params}")


def cached(cache: CacheSource, *, ttl: float | None = None, key: str | None = None, tags: Iterable[str] = (),
           cache_none: bool = False, skip_self: bool = True) -> Callable[[Callable[P, Awaitable[R]]],
                                                                         Callable[P, Awaitable[R]]]:
    """Decorate an ``async def`` so its results are cached.

    ``cache``: a :class:`MultiLevelCache`, or a zero-argument callable returning one (for
    caches created at startup). ``ttl``: seconds (None: the cache's default). ``key``:
    optional template such as ``"product:{product_id}"``. ``tags``: tag templates,
    formatted with the arguments. ``cache_none``: also cache ``None`` results.
    ``skip_self``: leave a first ``self``/``cls`` parameter out of the key.

    The wrapper has ``.cache_key(*args, **kwargs)`` to compute the key of a call (e.g. to
    delete it) and ``.__wrapped__``, the original function.
    """
    tag_templates = list(tags)
    if isinstance(tags, str):
        raise TypeError(f"tags={tags!r} must be a list of tag templates, e.g. tags=['product:{{product_id}}']")

    def decorate(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        if not inspect.iscoroutinefunction(func):
            raise TypeError(f"@cached needs an async function; {func.__qualname__} is not `async def`")
        if key is not None:
            _check_template(func, key, "key", skip_self)
        for template in tag_templates:
            _check_template(func, template, "tags", skip_self)

        plan = KeyPlan(func, template=key, skip_self=skip_self)
        fixed = cache if isinstance(cache, MultiLevelCache) else None

        def resolve() -> MultiLevelCache:
            if fixed is not None:
                return fixed
            assert not isinstance(cache, MultiLevelCache)
            target = cache()
            if not isinstance(target, MultiLevelCache):
                raise TypeError(f"@cached({cache!r}) must be given a MultiLevelCache or a function returning one, "
                                f"got {target!r}")
            return target

        def cache_key(*args: P.args, **kwargs: P.kwargs) -> str:
            return plan.key_of(args, kwargs)

        def tags_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[str]:
            arguments = plan.arguments(args, kwargs)  # a generator: runs only when a value is stored
            for template in tag_templates:
                yield template.format_map(arguments)

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            tags: Iterable[str] = tags_of(args, kwargs) if tag_templates else ()
            result = await resolve().fetch(plan.key_of(args, kwargs), lambda: func(*args, **kwargs), ttl=ttl,
                                           tags=tags, cache_none=cache_none)
            return result.value

        wrapper.cache_key = cache_key  # type: ignore[attr-defined]
        return wrapper

    return decorate
