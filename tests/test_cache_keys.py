"""perf.cache.keys: keys from bound arguments, defaults applied, self excluded."""

from __future__ import annotations

import pytest

from perf.cache.keys import bound_arguments, call_key, make_key


async def list_products(category: str, page: int = 1, per_page: int = 20, **filters: object) -> None: ...


class Repo:
    async def get(self, product_id: int, fields: str = "all") -> None: ...


def test_make_key_joins_parts() -> None:
    assert make_key("product", 42) == "product:42"
    with pytest.raises(ValueError, match="at least one part"):
        make_key()


def test_positional_keyword_and_defaults_give_one_key() -> None:
    keys = {
        call_key(list_products, ("books",), {}),
        call_key(list_products, ("books", 1), {}),
        call_key(list_products, (), {"category": "books", "per_page": 20}),
        call_key(list_products, ("books",), {"page": 1, "per_page": 20}),
    }
    assert len(keys) == 1
    assert next(iter(keys)).startswith(f"{__name__}.list_products:")


def test_different_arguments_give_different_keys() -> None:
    base = call_key(list_products, ("books",), {})
    assert call_key(list_products, ("books",), {"page": 2}) != base
    assert call_key(list_products, ("toys",), {}) != base
    # the seed's cache_key ignored keyword arguments: these collided
    red = call_key(list_products, ("books",), {"color": "red"})
    assert red != call_key(list_products, ("books",), {"color": "blue"})


def test_var_keyword_arguments_are_order_independent() -> None:
    a = call_key(list_products, ("books",), {"color": "red", "size": "L"})
    b = call_key(list_products, ("books",), {"size": "L", "color": "red"})
    assert a == b


def test_self_is_excluded() -> None:
    assert bound_arguments(Repo.get, (Repo(), 7), {}) == {"product_id": 7, "fields": "all"}
    assert call_key(Repo.get, (Repo(), 7), {}) == call_key(Repo.get, (Repo(), 7), {"fields": "all"})


def test_template_uses_bound_arguments() -> None:
    assert call_key(Repo.get, (Repo(), 7), {}, template="product:{product_id}:{fields}") == "product:7:all"
    with pytest.raises(ValueError, match="'nope'.*product_id"):
        call_key(Repo.get, (Repo(), 7), {}, template="product:{nope}")


def test_call_not_matching_signature_raises_type_error() -> None:
    with pytest.raises(TypeError):
        call_key(list_products, (), {"page": 2})


def test_key_plan_matches_binding_the_signature() -> None:
    from perf.cache.keys import KeyPlan, bound_arguments

    class Repo:
        def get(self, pid: int, page: int = 1, *, lang: str = "en") -> None: ...
        def plain(self, pid: int, page: int = 1) -> None: ...

    def variadic(a: int, *rest: int, **extra: int) -> None: ...
    def plain(category: str, page: int = 1, size: int = 20) -> None: ...

    calls: list[tuple[object, tuple[object, ...], dict[str, object]]] = [
        (plain, ("books",), {}), (plain, ("books", 1), {}), (plain, (), {"category": "books", "size": 20}),
        (plain, ("books",), {"page": 2}), (Repo.plain, (Repo(), 5), {}), (Repo.plain, (Repo(), 5, 2), {}),
        (Repo.get, (Repo(), 5), {"lang": "fr"}), (variadic, (1, 2, 3), {"x": 4}),
    ]
    for func, args, kwargs in calls:
        plan = KeyPlan(func)  # type: ignore[arg-type]
        assert plan.arguments(args, kwargs) == bound_arguments(func, args, kwargs), (func, args, kwargs)  # type: ignore[arg-type]
        assert plan.key(plan.arguments(args, kwargs)) == call_key(func, args, kwargs)  # type: ignore[arg-type]
        assert plan.key_of(args, kwargs) == plan.key(plan.arguments(args, kwargs))  # type: ignore[arg-type]
    plan = KeyPlan(plain, template="p:{category}:{page}")
    assert plan.key(plan.arguments(("toys",), {"page": 3})) == "p:toys:3"
    for args, kwargs in [(("toys",), {}), (("toys", 2), {}), (("toys",), {"size": 5}), (("toys", 2, 9), {})]:
        assert plan.key_of(args, kwargs) == plan.key(plan.arguments(args, kwargs))
    assert KeyPlan(plain, template="{{x}}:{page}").key_of(("a", 4), {}) == "{x}:4"
    for args, kwargs in [((), {}), (("a", 1, 2, 3), {}), (("a",), {"category": "b"}), (("a",), {"nope": 1})]:
        with pytest.raises(TypeError):
            plan.arguments(args, kwargs)
