"""The product API with one route slowed on purpose, for exercise 05.bottleneck to find by measuring.

``python -m perf.exercises.slowed_api ARGS`` serves the API exactly as ``python -m perf api ARGS``
does (one worker), except that one route does an extra step that costs far more than it should.
The learner does not read this file: they load the server, read ``Server-Timing`` per endpoint
(:func:`perf.load.time_breakdown`) to find the route and the phase, then profile it
(:class:`perf.load.analysis.ProfiledServer`, :func:`perf.load.analysis.flame_svg`) to find the
function, and name all three.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from perf.api.server import ApiServer
from perf.api.settings import ApiSettings

MODULE = "perf.exercises.slowed_api"


def format_listing(page: dict[str, Any]) -> dict[str, Any]:
    """A "display formatting" step someone added to every list page: it re-encodes the whole page
    once per item (quadratic in the page size, with the slow stdlib encoder). The bottleneck."""
    for _ in page["items"]:
        page = json.loads(json.dumps(page))
    return page


def _slow_down() -> None:
    from perf.api.products import ProductService

    listing = ProductService.list

    async def list_with_formatting(self: ProductService, paging: Any) -> dict[str, Any]:
        return format_listing(await listing(self, paging))

    ProductService.list = list_with_formatting  # type: ignore[method-assign]


class BottleneckServer(ApiServer):
    """:class:`~perf.api.server.ApiServer` running the slowed API (one worker: the change lives in its process)."""

    def __init__(self, settings: ApiSettings, **kwargs: Any) -> None:
        if kwargs.get("workers", 1) != 1:
            raise ValueError("BottleneckServer runs one worker (workers=1): the slowed route lives in its process")
        super().__init__(settings, **kwargs)
        self.command = [sys.executable, "-m", MODULE, *self.command[4:]]  # instead of `-m perf api`

    def module_args(self) -> list[str]:
        """What follows ``python -m`` to run this server elsewhere, e.g. under ``ProfiledServer`` (``{port}``)."""
        args = self.command[2:]
        port = args.index("--port")
        return [*args[:port + 1], "{port}", *args[port + 2:], f"--api-token={self.token}"]


def main(argv: Sequence[str]) -> int:
    """Serve the slowed API with ``python -m perf api``'s arguments."""
    from perf.api import cli

    serve_product = cli.worker_app

    def slowed_app() -> Any:  # the change is made in the worker, after the metrics directory is set
        _slow_down()
        return serve_product()

    cli.worker_app = slowed_app
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
