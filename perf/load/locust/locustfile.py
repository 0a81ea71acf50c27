"""Write a perf.load :class:`Scenario` as a standalone, readable locustfile.

One ``@task(weight)`` method per endpoint; path and body generators are imported from
their modules (so they must be module-level functions, the scenario contract anyway).
The file ends with a guarded import of :mod:`perf.load.locust.recorder`: where perf is
installed it records every request into perf.load's HDR histograms for
``perf load --engine locust``; plain Locust runs the same file without it.

>>> from perf.load.scenarios import Scenario
>>> text = render_locustfile(Scenario.single("/"))
>>> "class ScenarioUser(FastHttpUser)" in text and '@task(1)' in text
True
"""

from __future__ import annotations

import functools
import keyword
import math
import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from perf.load.models import ClosedModel, LoadModel, OpenModel
from perf.load.scenarios import Scenario, load_scenario

__all__ = ["export_locustfile", "render_locustfile"]


def _identifier(name: str, taken: set[str]) -> str:
    ident = re.sub(r"\W+", "_", name).strip("_").lower() or "endpoint"
    if ident[0].isdigit() or keyword.iskeyword(ident) or ident in ("client", "wait_time", "on_start", "context"):
        ident = f"task_{ident}"
    base, n = ident, 2
    while ident in taken:
        ident, n = f"{base}_{n}", n + 1
    taken.add(ident)
    return ident


def _int_weights(weights: list[float]) -> list[int]:
    """Locust's ``@task`` takes integer weights: the smallest integers in the same ratio."""
    fractions = [Fraction(w).limit_denominator(1000) for w in weights]
    scale = math.lcm(*(f.denominator for f in fractions))
    ints = [int(f * scale) for f in fractions]
    common = math.gcd(*ints)
    return [max(i // common, 1) for i in ints]


def _call(fn: Callable[..., Any], imports: dict[str, set[str]], what: str) -> str:
    """``fn(self.rng)`` as source; a ``functools.partial`` keeps its bound arguments visible."""
    if isinstance(fn, functools.partial):
        bound = [repr(a) for a in fn.args] + [f"{k}={v!r}" for k, v in fn.keywords.items()]
        return f"{_reference(fn.func, imports, what)}(self.rng{''.join(', ' + b for b in bound)})"
    return f"{_reference(fn, imports, what)}(self.rng)"


def _reference(fn: Callable[..., Any], imports: dict[str, set[str]], what: str) -> str:
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname or "." in qualname:
        raise ValueError(f"{what} is {fn!r}: a locustfile can only import module-level functions; "
                         "define it at the top level of an importable module (not in a notebook or a lambda)")
    imports.setdefault(module, set()).add(qualname)
    return qualname


def render_locustfile(scenario: Scenario, *, model: LoadModel | None = None, timeout: float = 10.0,
                      source: str = "") -> str:
    """The text of a locustfile running ``scenario`` under ``model`` (default: closed, no think time).

    A closed model becomes ``wait_time = constant(think)``; an open model becomes
    ``constant_throughput(rate / connections)`` per user (``perf load --engine locust``
    replaces it with a per-user arrival schedule measured from each request's due time).
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    model = model or ClosedModel()
    imports: dict[str, set[str]] = {}
    taken: set[str] = set()
    methods = []
    for endpoint, weight in zip(scenario.endpoints, _int_weights([e.weight for e in scenario.endpoints]),
                                strict=True):
        if isinstance(endpoint.path, str):
            path = repr(endpoint.path)
        else:
            path = _call(endpoint.path, imports, f"endpoint {endpoint.name!r} path")
        args = [repr(endpoint.method.upper()), path]
        if callable(endpoint.body):
            args.append(f"data={_call(endpoint.body, imports, f'endpoint {endpoint.name!r} body')}")
        elif endpoint.body is not None:
            args.append(f"data={endpoint.body!r}")
        if endpoint.headers:
            args.append(f"headers={dict(endpoint.headers)!r}")
        args.append(f"name={endpoint.name!r}")
        methods.append(f"    @task({weight})\n    def {_identifier(endpoint.name, taken)}(self) -> None:\n"
                       f"        self.client.request({', '.join(args)})\n")
    if isinstance(model, OpenModel):
        if model.steps:
            raise ValueError("model: a stepped OpenModel has no Locust equivalent here; "
                             "run one constant rate per run (or use the built-in engine's --ramp)")
        per_user = model.rate / model.connections
        wait = (f"constant_throughput({per_user:.6g})  # open model: {model.rate:g} req/s "
                f"over {model.connections} users")
        model_text = f"open model, {model.rate:g} req/s"
    else:
        wait = f"constant({model.think_time:g})  # closed model: think time between a user's requests"
        model_text = f"closed model, {model.users} users"
    header = [f'"""Locust scenario generated by perf.load{f" from {source}" if source else ""} ({model_text}).',
              "",
              "Run it alone:   locust -f THIS_FILE --headless --host http://127.0.0.1:8000 -u 16 -r 16 -t 20s",
              "Or as perf's:   python -m perf load URL --engine locust ... (HDR percentiles, SLO gates)",
              '"""', "", "import random", "",
              "from locust import FastHttpUser, constant, constant_throughput, events, task"]
    for module in sorted(imports):
        header.append(f"from {module} import {', '.join(sorted(imports[module]))}")
    body = ["", "", "class ScenarioUser(FastHttpUser):",
            f"    wait_time = {wait}",
            f"    network_timeout = {timeout:g}",
            f"    connection_timeout = {timeout:g}",
            "",
            "    def on_start(self) -> None:",
            "        self.rng = random.Random()",
            "", "\n".join(methods).rstrip("\n"), "", "",
            "# perf.load's measurement: every request into HDR histograms, shipped to the master at the",
            "# end (`perf load --engine locust`, `perf load-worker`). Plain Locust runs without it.",
            "try:",
            "    from perf.load.locust.recorder import install",
            "except ImportError:",
            "    pass",
            "else:",
            "    install(events, ScenarioUser)",
            ""]
    text = "\n".join(header + body)
    compile(text, "<locustfile>", "exec")  # a generator bug must fail here, not in a worker
    return text


def export_locustfile(path: str | Path, scenario: str | Scenario, *, model: LoadModel | None = None,
                      timeout: float = 10.0) -> Path:
    """Write :func:`render_locustfile` for ``scenario`` (a Scenario or ``"package.module:NAME"``) to ``path``."""
    scn = load_scenario(scenario) if isinstance(scenario, str) else scenario
    out = Path(path)
    out.write_text(render_locustfile(scn, model=model, timeout=timeout,
                                     source=scenario if isinstance(scenario, str) else ""))
    return out
