"""show_source: notebooks show the code they measure, read from perf itself."""

from __future__ import annotations

import inspect

import pytest

from perf.api.products import ProductService
from perf.api.routes import get_product
from perf.lab.source import show_source


def test_the_source_shown_is_the_function_itself_with_where_it_lives() -> None:
    shown = show_source(get_product, ProductService.get).data
    assert "`perf.api.routes.get_product` (line " in shown
    assert inspect.getsource(get_product).strip() in shown
    assert "`perf.api.products.ProductService.get`" in shown
    assert "async def get(self, product_id: int)" in shown  # dedented out of its class
    assert shown.count("```python") == 2


def test_what_has_no_source_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="cannot read the source of <built-in function len>"):
        show_source(len)
    with pytest.raises(ValueError, match="at least one"):
        show_source()
