"""The two-worker schedule (tests/_workers.py): files whole, notebooks whole, measurements in turn."""

from __future__ import annotations

import importlib.metadata
import inspect

from xdist.scheduler import LoadScopeScheduling

from tests._workers import MEASUREMENTS, NOTEBOOKS, SuiteScheduling, work_unit


def test_a_notebook_and_the_measuring_files_share_one_unit_every_other_file_is_its_own() -> None:
    assert work_unit("notebooks/05_api.ipynb::Cell 4") == NOTEBOOKS
    assert work_unit("notebooks/01_caching.ipynb::Cell 0") == NOTEBOOKS
    assert work_unit("tests/test_load_ramp.py::test_stress_finds_the_knee") == MEASUREMENTS
    assert work_unit("tests/test_cache_demo_keys.py::test_a_get_waits_for_keys_but_not_for_scan") == MEASUREMENTS
    assert work_unit("tests/test_api_hostile.py::test_x[a-b]") == "tests/test_api_hostile.py"
    assert work_unit("tests/test_api_hostile.py::TestGroup::test_y") == "tests/test_api_hostile.py"
    # a parameter that looks like a path or holds '::' does not move a test out of its file
    assert work_unit("tests/test_pool.py::test_z[notebooks/x.ipynb::Cell 1]") == "tests/test_pool.py"


def test_xdist_still_asks_the_scheduler_for_each_test_s_scope() -> None:
    # SuiteScheduling overrides LoadScopeScheduling._split_scope, xdist's own extension point for
    # its loadfile/loadgroup schedulers. Were it renamed, the override would silently do nothing and
    # every test would be a unit of its own: a notebook's cells spread over the workers.
    version = importlib.metadata.version("pytest-xdist")
    assert "self._split_scope(" in inspect.getsource(LoadScopeScheduling.schedule), (
        f"pytest-xdist {version}: LoadScopeScheduling.schedule no longer calls _split_scope; "
        "tests/_workers.py must follow its new extension point")
    assert SuiteScheduling._split_scope(None, "notebooks/00_setup.ipynb::Cell 1") == NOTEBOOKS  # type: ignore[arg-type]
