"""Reference solutions for the exercises of notebook 04."""

OFFERED = ("br", "gzip")


def choose(header):
    """RFC 9110 §12.5.3: parse coding;q=, refuse q=0, '*' for codings not named, server order breaks ties."""
    if not header:
        return None
    prefs = {}
    for element in header.split(","):
        element = element.strip(" \t")
        if not element:
            continue
        coding, *params = [p.strip(" \t") for p in element.split(";")]
        coding = {"x-gzip": "gzip"}.get(coding.lower(), coding.lower())
        q = 1.0
        if len(params) > 1:
            return None  # malformed: identity
        if params:
            name, _, value = params[0].partition("=")
            try:
                q = float(value)
            except ValueError:
                return None
            if name.strip().lower() != "q" or not 0 <= q <= 1 or len(value.partition(".")[2]) > 3:
                return None
        prefs.setdefault(coding, q)
    best, best_q = None, 0.0
    for coding in OFFERED:
        q = prefs.get(coding, prefs.get("*", 0.0))
        if q > best_q:
            best, best_q = coding, q
    return best


_COMPRESSIBLE = ("text/", "application/json", "application/javascript", "application/xml", "image/svg+xml")


def worth_compressing(status, content_type, headers, size):
    """A body worth the CPU: a full 2xx response, a text-like type, not encoded yet, not streamed, >= 1 KiB."""
    if status < 200 or status in (204, 206, 304) or "content-encoding" in headers:
        return False
    media = content_type.split(";")[0].strip().lower()
    if media == "text/event-stream":
        return False
    return media.startswith(_COMPRESSIBLE) and size >= 1024
