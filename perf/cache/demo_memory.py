"""What the L1 costs in memory: bytes per cached payload, and process RSS against entries.

* :func:`payload_sizes` — for sample payloads (e.g. the catalog's product dicts and the
  category reports), the serialized size (what Redis holds, and what
  ``MultiLevelCache(l1_max_bytes=...)`` counts) against the real in-memory size of the
  decoded objects as L1 keeps them (``tracemalloc``: every dict, str and float allocated
  while decoding), and their ratio.
* :func:`l1_rss` — fill an L1 (:class:`~perf.cache.lru.LRUCache`) with ``n`` entries, each
  a fresh decoded copy of a sample payload under its own key, in a *fresh process* per
  point (a new interpreter, so memory freed by an earlier point cannot hide the next one's growth),
  and report the process's RSS growth; optionally the same
  with a byte bound, whose RSS stops growing once the bound is reached.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import tracemalloc
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pandas as pd
import psutil

from perf.cache.lru import LRUCache

_TTL = 3600.0


def _check_samples(samples: Sequence[Any], name: str) -> list[bytes]:
    if not samples:
        raise ValueError(f"{name}={samples!r} must be a non-empty sequence of JSON-able payloads")
    return [orjson.dumps(sample) for sample in samples]


def payload_sizes(payloads: Mapping[str, Sequence[Any]], *, copies: int = 200) -> pd.DataFrame:
    """Serialized vs in-memory bytes per payload kind: one row per kind.

    ``payloads`` maps a kind (e.g. ``"product"``) to sample values. Each sample is
    serialized (orjson) and decoded ``copies`` times over while ``tracemalloc`` counts what
    stays allocated: the real size of the objects an L1 entry holds. Columns ``payload``,
    ``samples``, ``serialized_bytes`` (mean), ``in_memory_bytes`` (mean), ``ratio``.
    """
    if not payloads:
        raise ValueError("payloads={} must map a kind to sample values, e.g. {'product': [p1, p2]}")
    if not isinstance(copies, int) or copies < 1:
        raise ValueError(f"copies={copies!r} must be an int >= 1")
    rows = []
    for kind, samples in payloads.items():
        blobs = _check_samples(samples, f"payloads[{kind!r}]")
        serialized = sum(map(len, blobs)) / len(blobs)
        gc.collect()
        was_tracing = tracemalloc.is_tracing()
        if not was_tracing:
            tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            kept = [orjson.loads(blob) for _ in range(copies) for blob in blobs]
            allocated = tracemalloc.get_traced_memory()[0] - before
        finally:
            if not was_tracing:
                tracemalloc.stop()
        # the list holding the copies is not part of any payload
        in_memory = (allocated - kept.__sizeof__()) / len(kept)
        del kept
        rows.append({"payload": kind, "samples": len(blobs), "serialized_bytes": serialized,
                     "in_memory_bytes": in_memory, "ratio": in_memory / serialized})
    return pd.DataFrame(rows)


def _child() -> None:
    """Entry point of the fresh process: the job as JSON on stdin, the result as JSON on stdout."""
    job = orjson.loads(sys.stdin.buffer.read())
    blobs = [orjson.dumps(sample) for sample in job["samples"]]
    sys.stdout.buffer.write(orjson.dumps(_fill(blobs, job["n"], job["max_bytes"])))


def _fill(blobs: list[bytes], n: int, max_bytes: int | None) -> dict[str, float]:
    """RSS and Python bytes before and after filling an L1 with ``n`` entries (in a fresh process)."""
    process = psutil.Process()
    gc.collect()
    lru = LRUCache(max(n, 1), max_bytes=max_bytes)
    rss_before = process.memory_info().rss  # no tracemalloc here: its bookkeeping would count in RSS
    for i in range(n):
        blob = blobs[i % len(blobs)]
        lru.set(f"cache:v1:product:{i}", orjson.loads(blob), _TTL, size=len(blob))
    gc.collect()
    rss_after = process.memory_info().rss
    return {"entries_kept": len(lru), "l1_bytes": lru.bytes, "rss_growth_bytes": rss_after - rss_before}


def l1_rss(samples: Sequence[Any], *, sizes: Sequence[int], max_bytes: int | None = None) -> pd.DataFrame:
    """RSS growth of a process whose L1 is filled with ``n`` entries, for each ``n`` in ``sizes``.

    One fresh interpreter per point (the job goes in and out as JSON). With ``max_bytes`` each point is also run with
    an L1 bounded by that many estimated (serialized) bytes. Columns ``l1`` ("count only" or
    "max_bytes=..."), ``entries`` (inserted), ``entries_kept``, ``l1_bytes`` (the estimate the
    bound counts), ``rss_growth_mib``, ``rss_per_entry_bytes`` (RSS growth over the entries kept).
    """
    blobs = _check_samples(samples, "samples")
    if not sizes or any(not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(f"sizes={sizes!r} must be entry counts >= 1, e.g. (1_000, 5_000, 20_000)")
    variants: list[tuple[str, int | None]] = [("count only", None)]
    if max_bytes is not None:
        variants.append((f"max_bytes={max_bytes:,}", max_bytes))
    samples_json = [orjson.loads(blob) for blob in blobs]
    rows = []
    for n in sizes:
        for label, bound in variants:
            job = orjson.dumps({"samples": samples_json, "n": n, "max_bytes": bound})
            done = subprocess.run([sys.executable, "-c", "from perf.cache.demo_memory import _child; _child()"],
                                  input=job, capture_output=True, check=False, timeout=300)
            if done.returncode:
                raise RuntimeError(f"the L1 fill with n={n} failed: {done.stderr.decode(errors='replace')[-2000:]}")
            result = orjson.loads(done.stdout)
            kept = max(int(result["entries_kept"]), 1)
            rows.append({"l1": label, "entries": n, "entries_kept": int(result["entries_kept"]),
                         "l1_bytes": int(result["l1_bytes"]), "rss_growth_mib": result["rss_growth_bytes"] / 2**20,
                         "rss_per_entry_bytes": result["rss_growth_bytes"] / kept})
    return pd.DataFrame(rows)
