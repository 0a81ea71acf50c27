"""perf.api.settings and perf.api.validation: modes and input checks (pure functions)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from perf.api.errors import ApiError
from perf.api.settings import ApiMode, ApiSettings
from perf.api.validation import parse_id, parse_json, parse_paging, query_dict, validate_product


def test_mode_presets_and_switches_round_trip():
    assert ApiMode.parse("all") == ApiMode()
    assert ApiMode.parse("baseline") == ApiMode.baseline()
    mode = ApiMode.parse("all,-cache,-join")
    assert (mode.cache, mode.join, mode.pool, mode.keyset, mode.compression) == (False, False, True, True, True)
    assert ApiMode.parse("cache,pool") == ApiMode.parse("naive,+cache,+pool")
    assert ApiMode.parse("naive") == ApiMode.naive() != ApiMode.baseline()
    syllabus = ApiMode.parse("baseline")  # the syllabus' mini-project: its join, its pool, its cache
    assert syllabus.syllabus and syllabus.join and not (syllabus.cache or syllabus.pool or syllabus.keyset)
    assert str(ApiMode.parse("baseline,+join")) == "baseline" and str(ApiMode.parse("all,-cache")).startswith("naive")
    for text in ("all", "baseline", "naive", "all,-cache", "baseline,+join", "baseline,-join,+cache", "naive,+pool"):
        assert ApiMode.parse(str(ApiMode.parse(text))) == ApiMode.parse(text)


def test_bad_mode_names_the_switch_and_the_choices():
    with pytest.raises(ValueError, match="unknown switch 'cahce'.*cache, pool, keyset, compression, join"):
        ApiMode.parse("all,-cahce")
    with pytest.raises(ValueError, match="switch 'fastpath' is retired: cached reads now go through Nexios"):
        ApiMode.parse("all,-fastpath")  # a mode string from before this release: told why, not just "unknown"
    with pytest.raises(ValueError, match="pool_min=5 and pool_max=2"):
        ApiSettings(database_url="postgresql://x/y", redis_url=None, pool_min=5, pool_max=2)


def test_paging_defaults_and_range_errors_list_every_field():
    assert parse_paging({}).page == 1 and parse_paging({}).per_page == 20
    with pytest.raises(ApiError) as info:
        parse_paging({"page": "0", "per_page": "101", "category": "x"})
    assert info.value.status == 422
    assert [e["field"] for e in info.value.errors] == ["page", "per_page", "category"]


def test_ids_that_cannot_exist_are_404():
    assert parse_id("42") == 42
    for raw in ("abc", "0", "-1", str(2**63), "1.5"):
        with pytest.raises(ApiError) as info:
            parse_id(raw)
        assert info.value.status == 404


def test_malformed_json_is_400():
    with pytest.raises(ApiError) as info:
        parse_json(b"{bad")
    assert info.value.status == 400


def test_product_validation():
    ok = validate_product({"name": " Lamp ", "price": "12.5", "category_id": 3, "image_urls": ["https://a.b/c.jpg"]})
    assert ok == {"name": "Lamp", "price": Decimal("12.50"), "category_id": 3, "image_urls": ["https://a.b/c.jpg"]}
    with pytest.raises(ApiError) as info:
        validate_product({"name": "x" * 201, "price": 1.234, "category_id": True,
                          "image_urls": ["ftp://x"], "color": "red"})
    fields = {e["field"] for e in info.value.errors}
    assert fields == {"color", "name", "price", "category_id", "image_urls[0]"}
    for price in (-1, "NaN", "Infinity", "1e20", None, [1]):
        with pytest.raises(ApiError):
            validate_product({"name": "a", "price": price, "category_id": 1})
    with pytest.raises(ApiError, match="image_urls"):
        validate_product({"name": "a", "price": 1, "category_id": 1, "image_urls": ["https://a.b/x"] * 21})
    assert validate_product({"price": 0}, partial=True) == {"price": Decimal("0.00")}
    with pytest.raises(ApiError):
        validate_product({}, partial=True)
    with pytest.raises(ApiError):
        validate_product([1, 2])


@pytest.mark.parametrize("query", [b"page=1&page=2", b"a=%ff&b=&c", b"x=%E2%82%AC+1", b"per_page=5&category=1&after=10",
                                   b"", b"page=%00", b"=1&&page"])
def test_query_dict_reads_a_query_as_nexios_does(query: bytes):
    from nexios.http import Request

    async def nothing():  # noqa: ANN202
        return {}

    request = Request({"type": "http", "query_string": query, "headers": []}, nothing, nothing)
    assert query_dict(query) == dict(request.query_params)
