"""perf.load scenarios on Locust's distributed engine (a master and workers, possibly on other machines).

Measurement stays perf.load's: workers record into HDR histograms and the master merges
them as ``--processes`` does. Nothing here imports Locust (its gevent patching lives only
in the Locust processes this package starts).

    from perf.load.locust import run_locust, export_locustfile
"""

from perf.load.locust.locustfile import export_locustfile, render_locustfile
from perf.load.locust.runner import LocustRunError, run_locust

__all__ = ["LocustRunError", "export_locustfile", "render_locustfile", "run_locust"]
