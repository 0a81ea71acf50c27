"""Reference solutions for the exercises of notebook 06."""

import asyncio


async def accept_upload(queue, payload):
    """Queue the upload if there is room, else answer 429 at once: never wait for a slot."""
    try:
        queue.put_nowait(payload)
    except asyncio.QueueFull:
        return 429, {"error": "the upload queue is full", "retry_after": 1}
    return 202, {"queued": True}


async def shut_down(queue, workers):
    """Run every accepted task, then stop the workers and wait for them to end."""
    await queue.join()
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
