"""warn_once: a line that several pools or caches say at once is logged once."""

from __future__ import annotations

import logging

import pytest

from perf.logs import warn_once


def test_the_same_line_is_said_once_within_the_window(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("perf.test_logs")
    with caplog.at_level(logging.WARNING, logger="perf.test_logs"):
        said = [warn_once(log, "cannot open connections (%s)", "refused") for _ in range(5)]
        other = warn_once(log, "cannot open connections (%s)", "too many clients")
        again = warn_once(log, "cannot open connections (%s)", "refused", within=0)
    assert said == [True, False, False, False, False] and other and again
    assert [r.getMessage() for r in caplog.records] == [
        "cannot open connections (refused)", "cannot open connections (too many clients)",
        "cannot open connections (refused)"]
    with pytest.raises(ValueError, match="within=-1"):
        warn_once(log, "x", within=-1)
