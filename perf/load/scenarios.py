"""Scenarios: a weighted mix of requests whose paths and bodies come from parameter generators.

The format is plain Python so it can later be handed to a distributed engine: a
module-level :class:`Scenario` built from :class:`Endpoint` entries whose ``path`` and
``body`` are strings or module-level functions of a ``random.Random`` (so the scenario
pickles and can be named as ``"package.module:NAME"``)::

    def list_page(rng):
        return f"/products?category={rng.randint(1, 20)}&limit=20"

    SCENARIO = Scenario([
        Endpoint("list", list_page, weight=80),
        Endpoint("item", item_path, weight=15),
        Endpoint("write", "/products", weight=5, method="POST", body=new_product),
    ])

``python -m perf load URL --scenario package.module:SCENARIO`` runs it.
"""

from __future__ import annotations

import bisect
import importlib
import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

PathSource = str | Callable[[random.Random], str]
BodySource = bytes | Callable[[random.Random], bytes] | None


@dataclass(frozen=True)
class Endpoint:
    """One kind of request in a mix; ``name`` labels its histogram."""

    name: str
    path: PathSource
    weight: float = 1.0
    method: str = "GET"
    body: BodySource = None
    headers: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("Endpoint name must be a non-empty string, e.g. 'list'")
        if not self.weight > 0:
            raise ValueError(f"Endpoint {self.name!r}: weight must be > 0, got {self.weight!r}")
        if isinstance(self.path, str) and not self.path.startswith("/"):
            raise ValueError(f"Endpoint {self.name!r}: path must start with '/', got {self.path!r}")


@dataclass(frozen=True, slots=True)
class Request:
    """One concrete request picked from a scenario."""

    endpoint: str
    method: str
    target: str
    body: bytes | None
    headers: dict[str, str] | None


class Scenario:
    """A weighted mix of :class:`Endpoint` s; :meth:`pick` draws one concrete request."""

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        if not endpoints:
            raise ValueError("a Scenario needs at least one Endpoint")
        names = [e.name for e in endpoints]
        if len(set(names)) != len(names):
            raise ValueError(f"endpoint names must be unique, got {names}")
        self.endpoints = list(endpoints)
        self._cumulative = list(itertools.accumulate(e.weight for e in self.endpoints))

    @classmethod
    def single(cls, path: str = "/", *, name: str | None = None, method: str = "GET") -> Scenario:
        """A scenario of one fixed request."""
        return cls([Endpoint(name or f"{method} {path}", path, method=method)])

    def pick(self, rng: random.Random) -> Request:
        """Draw an endpoint by weight and generate its path and body with ``rng``."""
        endpoint = self.endpoints[bisect.bisect_right(self._cumulative, rng.random() * self._cumulative[-1])
                                  if len(self.endpoints) > 1 else 0]
        target = endpoint.path if isinstance(endpoint.path, str) else endpoint.path(rng)
        body = endpoint.body(rng) if callable(endpoint.body) else endpoint.body
        return Request(endpoint.name, endpoint.method, target, body,
                       dict(endpoint.headers) if endpoint.headers else None)

    def shares(self) -> dict[str, float]:
        """Each endpoint's share of the mix (weights normalised to 1)."""
        total = self._cumulative[-1]
        return {e.name: e.weight / total for e in self.endpoints}

    def __repr__(self) -> str:
        mix = ", ".join(f"{name} {share:.0%}" for name, share in self.shares().items())
        return f"<Scenario {mix}>"


def load_scenario(spec: str) -> Scenario:
    """Import ``"package.module:NAME"`` and return that :class:`Scenario`."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"scenario must look like 'package.module:NAME', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"scenario {spec!r}: cannot import {module_name!r} ({exc}); "
                         "is it on PYTHONPATH?") from exc
    scenario = getattr(module, attr, None)
    if not isinstance(scenario, Scenario):
        raise ValueError(f"scenario {spec!r}: {attr!r} is {type(scenario).__name__}, not a perf.load Scenario")
    return scenario
