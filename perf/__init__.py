"""perf: the performance workbook's implementations.

Foundation: :mod:`perf.config` (settings), :mod:`perf.services` (PostgreSQL + Redis),
:mod:`perf.measure` (timing, statistics, latency histograms), :mod:`perf.charts`.
Techniques: :mod:`perf.cache`, :mod:`perf.db`, :mod:`perf.pool`, :mod:`perf.compression`,
:mod:`perf.queue`; on top: :mod:`perf.api` (the product API) and :mod:`perf.load`.
"""

__version__ = "0.1.0"
