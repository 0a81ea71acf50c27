"""The seed's pickle cache runs code written into Redis; the signed serializer refuses the same bytes."""

from __future__ import annotations

from pathlib import Path

from perf.cache.demo_pickle import pickle_attack


async def test_seed_loader_runs_the_payload_and_signed_pickle_refuses_it(redis_url: str, tmp_path: Path) -> None:
    result = await pickle_attack(redis_url, tmp_path)
    assert result.seed_ran_payload  # the marker file was created by unpickling, in the subprocess
    assert result.seed_returned == "None"  # Path.touch returns None: the caller sees a plain cache miss
    assert result.signed_refused.startswith("SerializationError")
    assert not result.signed_ran_payload
    assert not result.marker.exists()
