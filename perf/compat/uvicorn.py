"""uvicorn's httptools protocol as a base class, for :mod:`perf.api.protocol` (checked against uvicorn 0.54.0).

uvicorn takes a protocol class (``http="module:Class"``) but documents no hooks on it: the
only way to bound a request head's time and size on its httptools path is to subclass
``uvicorn.protocols.http.httptools_impl.HttpToolsProtocol``. The subclass relies on:

* the parser callbacks it overrides and calls up to: ``data_received``, ``on_message_begin``,
  ``on_url``, ``on_headers_complete``, ``on_body``, ``on_message_complete``,
  ``on_response_complete``, ``send_400_response``, ``connection_made``, ``connection_lost``,
  ``shutdown``;
* the attributes they set: ``parser``, ``url``, ``headers``, ``cycle``, ``transport``, ``flow``,
  ``loop``, and on the ``RequestResponseCycle``: ``keep_alive``, ``more_body``,
  ``response_started``, ``response_complete``, ``disconnected``, ``message_event``;
* one private method: ``data_received`` is replaced whole, and it must first stop the
  keep-alive timer as uvicorn's does (``_unset_keepalive_if_required``), exposed here as
  :meth:`HttpToolsBase.stop_keep_alive_timer`.

``tests/test_compat.py`` checks all of them on the installed uvicorn.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HttpToolsBase"]

#: The uvicorn version these names were checked against (``requirements.txt``).
CHECKED = "0.54.0"


class HttpToolsBase(HttpToolsProtocol):
    """uvicorn's ``HttpToolsProtocol``, its one private step named."""

    def stop_keep_alive_timer(self) -> None:
        """Cancel the idle keep-alive timer: data arrived (the first thing uvicorn's ``data_received`` does)."""
        self._unset_keepalive_if_required()
