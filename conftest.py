"""Every test session (pytest and nbval) writes its build output, runs included, to a temporary folder.

Set before ``perf.config`` reads the environment, and inherited by the notebook kernels
nbval starts, so a test run never adds to or overwrites a user's ``build/runs``.
"""

import atexit
import os
import shutil
import tempfile

_build = tempfile.mkdtemp(prefix="perf-test-build-")
atexit.register(shutil.rmtree, _build, True)
os.environ["PERF_BUILD_DIR"] = _build
os.environ.pop("PERF_RUN_ID", None)
os.environ.pop("PERF_RUN_SOURCE", None)
