"""asyncio plumbing every floor uses: stopping background tasks."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel ``tasks`` (``None`` entries are skipped) and wait until each has finished.

    A background task logs its own failures, so what it raised is not raised again here;
    returning means none of them is still running (a cancelled task may run its cleanup first).
    """
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
