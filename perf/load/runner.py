"""Run a load model against a server: :func:`run_load`, the closed and the open loop.

:mod:`perf.load.models` says what the load is (:class:`~perf.load.models.ClosedModel`,
:class:`~perf.load.models.OpenModel`); this module sends it through a driver and records
every scheduled request into a :class:`~perf.load.results.LoadResult` (answered, failed,
timed out or dropped), so the accounting identity holds after every run.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from perf.aio import cancel_and_wait
from perf.load.drivers import Connection, Driver, RequestFailed, Response, create_driver
from perf.load.drivers.raw import RawConnection, RawDriver
from perf.load.models import ClosedModel, LoadModel, OpenModel
from perf.load.results import BatchRecorder, LoadResult
from perf.load.scenarios import Request, Scenario

__all__ = ["run_load"]


async def run_load(base_url: str, *, model: LoadModel, scenario: Scenario | None = None,
                   driver: str | Driver = "builtin", timeout: float = 10.0, seed: int = 0,
                   progress: Callable[[LoadResult, float], None] | None = None) -> LoadResult:
    """Put ``base_url`` under ``model`` load with requests drawn from ``scenario`` (default ``GET /``).

    Every loop is bounded by the model's duration (plus ``timeout`` to drain). Every
    scheduled request is accounted (see :mod:`perf.load.results`): completed, failed,
    timed out or dropped. A driver passed as an object is left open; one named here is
    closed before return. ``progress`` (e.g. :class:`perf.load.progress.LineProgress`) is
    called about once a second with the result so far and the elapsed seconds.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    scenario = scenario or Scenario.single("/")
    owned = isinstance(driver, str)
    drv = create_driver(driver, base_url) if isinstance(driver, str) else driver
    result = LoadResult(driver=drv.name, model=model.describe())
    recorder = BatchRecorder(result)
    cpu0 = time.process_time()
    ticker = asyncio.create_task(_tick(progress, recorder)) if progress is not None else None
    try:
        if isinstance(model, ClosedModel):
            await _run_closed(drv, model, scenario, recorder, timeout, random.Random(seed))
        elif isinstance(model, OpenModel):
            result.offered_rate = model.total_requests / model.total_seconds
            await _run_open(drv, model, scenario, recorder, timeout, random.Random(seed))
        else:
            raise TypeError(f"model must be a ClosedModel or OpenModel, got {type(model).__name__}")
    finally:
        await cancel_and_wait(ticker)
        if owned:
            await drv.close()
        recorder.flush()
    result.client_cpu = time.process_time() - cpu0
    result.check_accounting()
    return result


async def _tick(progress: Callable[[LoadResult, float], None], recorder: BatchRecorder) -> None:
    start = time.perf_counter()
    while True:
        await asyncio.sleep(1.0)
        progress(recorder.flush(), time.perf_counter() - start)


async def _exchange(conn: Connection, req: Request, result: BatchRecorder, start: float, *,
                    due: float, deadline: float, corrected: bool) -> None:
    """Send one request, give up at ``deadline``, and record its outcome in exactly one bucket.

    Latency runs from ``due``: the open model's scheduled time (``corrected``: this
    corrects coordinated omission; the send-time latency is kept as ``naive``), or the
    closed model's send. A request that times out enters the histograms at the time it
    had waited.
    """
    sent = time.perf_counter()
    try:
        async with asyncio.timeout_at(_loop_time(deadline)):
            response = await conn.request(req.method, req.target, req.body, req.headers)
    except RequestFailed as exc:
        result.record_error(req.endpoint, exc.kind, sent - start)
        return
    except TimeoutError:
        now = time.perf_counter()
        result.record_given_up(req.endpoint, now - due, now - start, dropped=False)
        return
    done = time.perf_counter()
    result.record(req.endpoint, done - due, response.status, done - start,
                  naive=done - sent if corrected else None, server_timing=response.server_timing,
                  nbytes=response.nbytes)


def _loop_time(perf_deadline: float) -> float:
    """A ``perf_counter`` deadline on the running loop's clock."""
    return asyncio.get_running_loop().time() + (perf_deadline - time.perf_counter())


async def _run_closed(drv: Driver, model: ClosedModel, scenario: Scenario, recorder: BatchRecorder,
                      timeout: float, rng: random.Random) -> None:
    result = recorder.result
    start = time.perf_counter()
    deadline = start + model.duration
    budget = [model.max_requests if model.max_requests is not None else -1]

    async def user() -> None:
        conn = await drv.connect()
        try:
            while time.perf_counter() < deadline and budget[0] != 0:
                budget[0] -= 1
                result.scheduled += 1
                now = time.perf_counter()
                await _exchange(conn, scenario.pick(rng), recorder, start, due=now, deadline=now + timeout,
                                corrected=False)
                if model.think_time:
                    await asyncio.sleep(model.think_time)
        finally:
            await conn.close()

    if isinstance(drv, RawDriver):
        loop = asyncio.get_running_loop()
        users = [_CallbackUser(await drv.connect(), model, scenario, recorder, rng, start=start,
                               deadline=deadline, timeout=timeout, budget=budget, loop=loop)
                 for _ in range(model.users)]
        try:
            await asyncio.gather(*(u.run() for u in users))
        finally:
            for u in users:
                await u.close()
    else:
        await asyncio.gather(*(user() for _ in range(model.users)))
    result.duration = time.perf_counter() - start


class _CallbackUser:
    """A closed-model user on the built-in driver's callback API: each answer sends the next request.

    The same loop and accounting as ``_run_closed``'s ``user`` coroutine, without a future,
    a task wake-up and a timeout scope per request (about half the generator's Python cost).
    A timer per request gives it up ``timeout`` after its send.
    """

    def __init__(self, conn: RawConnection, model: ClosedModel, scenario: Scenario, recorder: BatchRecorder,
                 rng: random.Random, *, start: float, deadline: float, timeout: float, budget: list[int],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.conn, self.model, self.scenario, self.recorder, self.rng = conn, model, scenario, recorder, rng
        self.start, self.deadline, self.timeout, self.budget, self.loop = start, deadline, timeout, budget, loop
        self.done: asyncio.Future[None] = loop.create_future()
        self.timer: asyncio.TimerHandle | None = None
        self.pending: asyncio.Handle | asyncio.Task[None] | None = None
        self.req: Request | None = None
        self.sent = 0.0

    async def run(self) -> None:
        self._next()
        await self.done

    async def close(self) -> None:
        self._cancel()
        await self.conn.close()

    def _cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.pending is not None:
            self.pending.cancel()
        if not self.done.done():
            self.done.cancel()

    def _next(self) -> None:
        try:
            if time.perf_counter() >= self.deadline or self.budget[0] == 0 or self.done.done():
                if not self.done.done():
                    self.done.set_result(None)
                return
            self.budget[0] -= 1
            self.recorder.result.scheduled += 1
            req = self.req = self.scenario.pick(self.rng)
            if not self.conn.ready:
                self.pending = self.loop.create_task(self._connect_then_send(req))
                return
            self._send(req)
        except BaseException as exc:  # a bug here must end the run, not hang it
            if not self.done.done():
                self.done.set_exception(exc)

    async def _connect_then_send(self, req: Request) -> None:
        self.sent = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                await self.conn.open()
        except RequestFailed as exc:
            self.recorder.record_error(req.endpoint, exc.kind, self.sent - self.start)
            self._continue()
            return
        except TimeoutError:
            self._give_up()
            return
        self._send(req)

    def _send(self, req: Request) -> None:
        self.sent = time.perf_counter()
        self.timer = self.loop.call_at(self.loop.time() + self.timeout, self._give_up)
        self.conn.send(req.method, req.target, req.body, req.headers, self._answered)

    def _answered(self, outcome: Response | RequestFailed) -> None:
        done = time.perf_counter()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        req = self.req
        assert req is not None
        try:
            if isinstance(outcome, RequestFailed):
                self.recorder.record_error(req.endpoint, outcome.kind, self.sent - self.start)
            else:
                self.recorder.record(req.endpoint, done - self.sent, outcome.status, done - self.start,
                                     server_timing=outcome.server_timing, nbytes=outcome.nbytes)
        except BaseException as exc:
            if not self.done.done():
                self.done.set_exception(exc)
            return
        self._continue()

    def _give_up(self) -> None:
        self.timer = None
        self.conn.abort()
        now = time.perf_counter()
        assert self.req is not None
        self.recorder.record_given_up(self.req.endpoint, now - self.sent, now - self.start, dropped=False)
        self._continue()

    def _continue(self) -> None:
        if self.model.think_time:
            self.pending = self.loop.call_later(self.model.think_time, self._next)
        else:
            self._next()


async def _run_open(drv: Driver, model: OpenModel, scenario: Scenario, recorder: BatchRecorder,
                    timeout: float, rng: random.Random) -> None:
    """Schedule every request; each is given up ``timeout`` after its *scheduled* time.

    A request still queued when its timeout passes is dropped (never sent); one in
    flight then times out. Both enter the histograms at their wait. Arrivals that find
    ``max_backlog`` requests queued are dropped at once and recorded at ``timeout`` (they
    would have waited at least behind the whole backlog; recording 0 would flatter the run).
    """
    result = recorder.result
    queue: asyncio.Queue[tuple[float, Request]] = asyncio.Queue()
    in_flight: dict[int, tuple[float, Request]] = {}
    start = time.perf_counter()

    async def worker(slot: int) -> None:
        conn = await drv.connect()
        try:
            while True:
                due, req = await queue.get()
                try:
                    now = time.perf_counter()
                    if now - due >= timeout:
                        result.record_given_up(req.endpoint, now - due, now - start, dropped=True)
                        continue
                    if now - due > model.late_after:
                        result.late += 1
                    in_flight[slot] = (due, req)
                    await _exchange(conn, req, recorder, start, due=due, deadline=due + timeout, corrected=True)
                    del in_flight[slot]
                finally:
                    queue.task_done()
        finally:
            await conn.close()

    workers = [asyncio.create_task(worker(slot)) for slot in range(model.connections)]
    last_due = start
    try:
        for n, offset in enumerate(model.schedule()):
            due = last_due = start + offset
            delay = due - time.perf_counter()
            if delay > 0:
                # Event-loop timers (uvloop's have 1 ms granularity) can fire before `due` by
                # perf_counter; sending early would make `done - due` shorter than the request.
                while delay > 0:
                    await asyncio.sleep(delay)
                    delay = due - time.perf_counter()
            elif n % 32 == 0:
                await asyncio.sleep(0)  # let the workers run when we are behind
            result.scheduled += 1
            req = scenario.pick(rng)
            if queue.qsize() >= model.max_backlog:
                result.record_given_up(req.endpoint, timeout, due - start, dropped=True)
                continue
            queue.put_nowait((due, req))
        # Every request has given up by last_due + timeout; the slack covers a busy loop.
        try:
            async with asyncio.timeout_at(_loop_time(last_due + timeout + 1.0)):
                await queue.join()
        except TimeoutError:
            pass
    finally:
        await cancel_and_wait(*workers)
        now = time.perf_counter()
        for due, req in in_flight.values():  # cut off mid-request: it timed out
            result.record_given_up(req.endpoint, now - due, now - start, dropped=False)
        while not queue.empty():  # never sent
            due, req = queue.get_nowait()
            result.record_given_up(req.endpoint, now - due, now - start, dropped=True)
    result.duration = time.perf_counter() - start
