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
