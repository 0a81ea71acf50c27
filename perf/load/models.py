"""Load models: closed (N users in a loop) and open (requests arrive on a schedule).

A **closed** model sends the next request only when the previous one answered, so a
stalled server also stalls the generator: the requests it *would* have sent are never
measured (coordinated omission). An **open** model schedules every request in
advance at the arrival rate and measures latency from the *scheduled* send time, so
time spent waiting for a free connection counts. Requests that start more than
``late_after`` after their slot are counted as late; a request is given up ``timeout``
after its slot (dropped if it was never sent, timed out if it was) and its wait enters
the histograms, so a stalled server can never make a run look faster.

This module says what the load is; :func:`perf.load.runner.run_load` runs it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ClosedModel:
    """``users`` concurrent users, each on its own connection, pausing ``think_time`` between requests."""

    users: int = 10
    duration: float = 10.0
    think_time: float = 0.0
    max_requests: int | None = None

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError(f"users must be >= 1, got {self.users!r}")
        _check_duration(self.duration)
        if self.think_time < 0:
            raise ValueError(f"think_time must be >= 0 seconds, got {self.think_time!r}")
        if self.max_requests is not None and self.max_requests < 1:
            raise ValueError(f"max_requests must be >= 1 or None, got {self.max_requests!r}")

    def describe(self) -> str:
        """Short label for results and charts."""
        think = f", think {self.think_time * 1e3:g} ms" if self.think_time else ""
        return f"closed, {self.users} users{think}"

    def split(self, parts: int) -> list[ClosedModel]:
        """The same load shared by ``parts`` generator processes."""
        users = [self.users // parts + (1 if i < self.users % parts else 0) for i in range(parts)]
        cap = None if self.max_requests is None else max(self.max_requests // parts, 1)
        return [ClosedModel(u, self.duration, self.think_time, cap) for u in users if u]


@dataclass(frozen=True)
class OpenModel:
    """Arrivals at ``rate`` req/s for ``duration`` s, or ``steps=[(rate, seconds), ...]`` in turn."""

    rate: float = 100.0
    duration: float = 10.0
    steps: Sequence[tuple[float, float]] | None = None
    connections: int = 64
    max_backlog: int = 10_000
    late_after: float = 0.010

    def __post_init__(self) -> None:
        for rate, seconds in self.phases():
            if not rate > 0:
                raise ValueError(f"rate must be > 0 requests/s, got {rate!r}")
            _check_duration(seconds)
        if self.connections < 1:
            raise ValueError(f"connections must be >= 1, got {self.connections!r}")
        if self.max_backlog < 1:
            raise ValueError(f"max_backlog must be >= 1, got {self.max_backlog!r}")

    def phases(self) -> list[tuple[float, float]]:
        """``[(rate, seconds), ...]``: the steps, or the one constant phase."""
        return [(float(r), float(s)) for r, s in self.steps] if self.steps else [(self.rate, self.duration)]

    @property
    def total_seconds(self) -> float:
        """Length of the arrival schedule."""
        return sum(s for _, s in self.phases())

    @property
    def total_requests(self) -> int:
        """Requests the schedule offers."""
        return sum(int(r * s) for r, s in self.phases())

    def schedule(self) -> Iterator[float]:
        """Offsets (seconds from the start) at which requests are due, evenly spaced per phase."""
        start = 0.0
        for rate, seconds in self.phases():
            for i in range(int(rate * seconds)):
                yield start + i / rate
            start += seconds

    def describe(self) -> str:
        """Short label for results and charts."""
        if self.steps:
            return "open, steps " + " → ".join(f"{r:g}" for r, _ in self.phases()) + " req/s"
        return f"open, {self.rate:g} req/s"

    def split(self, parts: int) -> list[OpenModel]:
        """The same load shared by ``parts`` generator processes."""
        steps = [(r / parts, s) for r, s in self.phases()]
        return [OpenModel(self.rate / parts, self.duration, steps if self.steps else None,
                          max(self.connections // parts, 1), self.max_backlog, self.late_after)
                for _ in range(parts)]


LoadModel = ClosedModel | OpenModel


def _check_duration(seconds: float) -> None:
    if not 0 < seconds <= 3600:
        raise ValueError(f"duration must be in (0, 3600] seconds, got {seconds!r}")
