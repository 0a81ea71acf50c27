"""Measuring apparatus: the seed's pickle cache running code someone wrote into Redis.

:func:`pickle_attack` stores a pickle whose ``__reduce__`` calls ``Path.touch(marker)``
(harmless: it creates an empty file in a directory you give it) under a key, has the
seed's :class:`~perf.cache.naive.CacheManager` ``get`` that key **in a subprocess**, and
checks whether the marker appeared; then it hands the very same bytes to
:class:`~perf.cache.serializers.SignedPickleSerializer`, which refuses them before
unpickling (no signature made with the secret), and checks the marker did not reappear.

>>> result = await pickle_attack(redis_url, tmp_dir)
>>> result.seed_ran_payload, result.signed_refused
(True, 'SerializationError: ...')
"""

from __future__ import annotations

import pathlib
import pickle
import secrets
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import redis.asyncio as redis

from perf.cache.errors import SerializationError
from perf.cache.serializers import SignedPickleSerializer

_SEED_GET = """
import asyncio, sys
from perf.cache.naive import CacheManager

async def main():
    cache = CacheManager(sys.argv[1])
    try:
        print(repr(await cache.get(sys.argv[2])))
    finally:
        await cache.aclose()

asyncio.run(main())
"""


class _TouchMarker:
    """Unpickling this object calls ``pathlib.Path.touch(marker)``: code chosen by whoever wrote the bytes."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def malicious_payload(marker: Path) -> bytes:
    """Pickle bytes that, when unpickled, create the empty file ``marker`` (and nothing else)."""
    return pickle.dumps(_TouchMarker(marker))


@dataclass(frozen=True)
class PickleAttack:
    """What the seed's loader and the signed serializer did with the same bytes."""

    marker: Path
    seed_ran_payload: bool  # the marker file appeared after the seed's CacheManager.get
    seed_returned: str  # what that get returned (printed by the subprocess)
    signed_refused: str  # the signed serializer's error ("" if it accepted the bytes)
    signed_ran_payload: bool  # the marker reappeared after the signed serializer's loads


async def pickle_attack(redis_url: str, workdir: Path | str, *, timeout: float = 60.0) -> PickleAttack:
    """Write :func:`malicious_payload` into Redis, load it with the seed's cache in a subprocess,
    then with :class:`SignedPickleSerializer`; ``workdir`` receives the marker file."""
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise ValueError(f"workdir={str(workdir)!r} must be an existing directory (e.g. a tempfile.mkdtemp())")
    marker = workdir / f"pwned-{uuid.uuid4().hex[:8]}"
    payload = malicious_payload(marker)
    key = f"demo:pickle:{uuid.uuid4().hex[:8]}"
    client = redis.from_url(redis_url)
    try:
        await client.set(key, payload, ex=300)  # anyone who can reach Redis can do this
        proc = subprocess.run([sys.executable, "-c", _SEED_GET, redis_url, key], capture_output=True, text=True,
                              timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"the seed's loader failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
        seed_ran = marker.exists()
        marker.unlink(missing_ok=True)
        refused = ""
        try:
            SignedPickleSerializer(secrets.token_bytes(32)).loads(cast(bytes, await client.get(key)))
        except SerializationError as exc:
            refused = f"{type(exc).__name__}: {exc}"
        return PickleAttack(marker=marker, seed_ran_payload=seed_ran, seed_returned=proc.stdout.strip(),
                            signed_refused=refused, signed_ran_payload=marker.exists())
    finally:
        await client.unlink(key)
        await client.aclose()
