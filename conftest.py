"""Every test session (pytest and nbval) writes its build output, runs included, to a temporary folder.

Set before ``perf.config`` reads the environment, and inherited by the notebook kernels
nbval starts, so a test run never adds to or overwrites a user's ``build/runs``.
"""

import atexit
import os
import shutil
import tempfile

import pytest

_build = tempfile.mkdtemp(prefix="perf-test-build-")
atexit.register(shutil.rmtree, _build, True)
os.environ["PERF_BUILD_DIR"] = _build
os.environ.pop("PERF_RUN_ID", None)
os.environ.pop("PERF_RUN_SOURCE", None)


def pytest_sessionfinish(session, exitstatus):  # type: ignore[no-untyped-def]
    """Audit the claims of every notebook this session executed: an unsupported claim fails the run
    (once, in the controller, when xdist runs the tests in workers)."""
    if hasattr(session.config, "workerinput"):
        return
    from pathlib import Path

    from perf.runs.claims import audit, format_audit
    from perf.runs.store import list_run_dirs, open_run

    failed = False
    for path in list_run_dirs(Path(_build) / "runs"):
        run = open_run(path.name, directory=path.parent)
        results = audit(run)
        if results:
            print("\n" + format_audit(run, results))
        failed |= not all(r.supported for r in results)
    if failed and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_configure(config):  # type: ignore[no-untyped-def]
    """An xdist worker writes its runs into the controller's folder, which the controller audits."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "perf_build_dir" in workerinput:
        os.environ["PERF_BUILD_DIR"] = workerinput["perf_build_dir"]
        from perf.config import get_settings

        get_settings.cache_clear()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):  # type: ignore[no-untyped-def]
    """xdist's controller hands each worker its build folder."""
    node.workerinput["perf_build_dir"] = _build


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):  # type: ignore[no-untyped-def]
    """Each test file whole on one worker; the notebooks in turn, the measuring files in turn (tests/_workers.py)."""
    from tests._workers import SuiteScheduling

    return SuiteScheduling(config, log)
