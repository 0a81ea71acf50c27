"""Real PostgreSQL and Redis for the workbook: embedded by default, external when configured.

>>> from perf.services import ensure_services
>>> with ensure_services() as svc:
...     svc.database_url, svc.redis_url

For experiments that stop and restart a server (fail-open, pool recovery), start a
private one with :class:`EmbeddedPostgres` or :class:`EmbeddedRedis`. The cores a
measurement may use, and pinning processes to them: :mod:`perf.services.cpu`.
"""

from perf.services.binaries import ServiceUnavailable, postgres_bin_dir, redis_server_path
from perf.services.cpu import current_affinity, pin_process, process_cpu_seconds, split_cores, usable_cores
from perf.services.manager import ServiceHandle, ensure_services, services_status, stop_services
from perf.services.postgres_server import EmbeddedPostgres
from perf.services.redis_server import EmbeddedRedis
from perf.services.server_process import ServerProcess, start_together

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "ServerProcess",
    "ServiceHandle",
    "ServiceUnavailable",
    "current_affinity",
    "ensure_services",
    "pin_process",
    "postgres_bin_dir",
    "process_cpu_seconds",
    "redis_server_path",
    "services_status",
    "split_cores",
    "start_together",
    "stop_services",
    "usable_cores",
]
