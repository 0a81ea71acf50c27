"""``Accept-Encoding`` parsing and content-coding negotiation (RFC 9110 §12.5.3).

``parse_accept_encoding`` is strict: a header that does not follow the grammar raises
``ValueError``. ``choose_encoding`` never raises: a missing, empty or malformed header
means ``identity`` (no compression), because a client whose header we cannot read may
not be able to decode what we would send, and an unreadable header must never turn
into a 500.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_QVALUE = re.compile(r"^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$")
#: Names a client may use for the same coding (RFC 9110 §8.4.1.3).
_ALIASES = {"x-gzip": "gzip"}


def parse_accept_encoding(header: str) -> dict[str, float]:
    """Parse an ``Accept-Encoding`` value into ``{coding: q}`` (lower-case codings).

    ``"gzip;q=0.8, br, *;q=0"`` gives ``{"gzip": 0.8, "br": 1.0, "*": 0.0}``. Empty list
    elements are ignored (the grammar allows them); the first mention of a coding wins.
    Raises ``ValueError`` naming the bad element when the header is malformed.
    """
    if not isinstance(header, str):
        raise TypeError(f"header={header!r} must be a str (decode the raw header as latin-1 first)")
    prefs: dict[str, float] = {}
    for element in header.split(","):
        element = element.strip(" \t")
        if not element:
            continue
        coding, *params = (part.strip(" \t") for part in element.split(";"))
        coding = coding.lower()
        if not _TOKEN.match(coding):
            raise ValueError(f"Accept-Encoding element {element!r}: {coding!r} is not a content-coding token")
        q = 1.0
        if len(params) > 1:
            raise ValueError(f"Accept-Encoding element {element!r}: only one ';q=' weight is allowed")
        if params:
            name, sep, value = params[0].partition("=")
            if name.strip(" \t").lower() != "q" or not sep or not _QVALUE.match(value.strip(" \t")):
                raise ValueError(f"Accept-Encoding element {element!r}: the weight must read ';q=' "
                                 "followed by 0..1 with at most 3 decimals")
            q = float(value.strip(" \t"))
        prefs.setdefault(_ALIASES.get(coding, coding), q)
    return prefs


def choose_encoding(header: str | None, available: Sequence[str]) -> str | None:
    """The coding to send, or ``None`` for identity (send the body as is).

    Among ``available`` (the server's codings, best first) pick the one the client rates
    highest; ties go to the server's order. A coding the header does not name gets the
    weight of ``*`` (0 when there is no ``*``); ``q=0`` is a refusal. A missing, empty or
    malformed header means identity. When the client also refuses identity
    (``identity;q=0``) and accepts nothing we have, we still send identity rather than
    a 406: a readable response beats an error for a performance middleware.
    """
    if not header:
        return None
    try:
        prefs = parse_accept_encoding(header)
    except ValueError:
        return None
    star = prefs.get("*", 0.0)
    best: str | None = None
    best_q = 0.0
    for coding in available:
        q = prefs.get(coding, star)
        if q > best_q:
            best, best_q = coding, q
    if best is not None and prefs.get("identity", 0.0) > best_q:
        return None  # the client explicitly prefers the body unencoded
    return best
