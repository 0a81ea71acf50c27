"""The syllabus' @cached on a real Nexios route fails each way notebook 01 shows; perf.cache.cached does not."""

from __future__ import annotations

import pytest

from perf.cache.decorator import cached
from perf.cache.demo_decorator import cached_route, handler_metadata, seed_cached, seed_route, serve_users
from perf.cache.multilevel import MultiLevelCache
from perf.cache.naive import CacheManager


async def test_each_seed_bug_fails_on_a_real_route_and_the_fix_loads_once_per_user(
        redis_url: str, redis_prefix: str, capfd: pytest.CaptureFixture[str]) -> None:
    seed = CacheManager(redis_url)
    try:
        written = await serve_users("as written", seed_route(seed), requests=6, users=2)
        every = await serve_users("every argument", seed_route(seed, key_from="all values"), requests=6, users=2)
        path = await serve_users("path only", seed_route(seed, key_from="path only"), requests=6, users=2)
    finally:
        await seed.aclose()
    assert written.statuses == [500] * 6 and "TypeError" in written.first_error and written.loads == 0
    assert every.statuses == [500] * 6 and "AttributeError" in every.first_error  # str() of the Response
    # the path-only key repeats (2 distinct), yet every request loads: the Response never pickles
    assert path.statuses == [200] * 6 and len(set(path.keys_asked)) == 2 and path.loads == 6
    async with MultiLevelCache(redis_url, namespace=redis_prefix + "dec") as cache:
        fixed = await serve_users("perf.cache.cached", cached_route(cache), requests=6, users=2)
    assert fixed.statuses == [200] * 6 and fixed.loads == 2
    assert sorted(set(fixed.keys_asked)) == ["user:1", "user:2"]
    # each 500's framework traceback is counted, not printed (a notebook showed 40 copies of one)
    assert written.tracebacks_logged == 6 and every.tracebacks_logged == 6 and fixed.tracebacks_logged == 0
    assert "Traceback" not in capfd.readouterr().err


def test_the_seed_wrapper_loses_the_handlers_metadata_and_the_fix_keeps_it(redis_url: str) -> None:
    async def get_user(request, response, user_id: int):  # noqa: ANN001, ANN202
        """One user, as JSON."""

    seed = handler_metadata(seed_cached(CacheManager(redis_url), "user")(get_user))
    assert seed["name"] == "wrapper" and seed["doc"] == "(none)" and "user_id" not in seed["signature"]
    fixed = handler_metadata(cached(lambda: None, key="user:{user_id}")(get_user))  # type: ignore[arg-type,return-value]
    assert fixed["name"] == "get_user" and fixed["doc"] == "One user, as JSON." and "user_id" in fixed["signature"]


async def test_bad_arguments_name_the_parameter(redis_url: str) -> None:
    with pytest.raises(ValueError, match="requests=0"):
        await serve_users("x", seed_route(CacheManager(redis_url)), requests=0)
    with pytest.raises(ValueError, match="key_from='url'"):
        seed_route(CacheManager(redis_url), key_from="url")(lambda _: None, [])  # type: ignore[arg-type]
