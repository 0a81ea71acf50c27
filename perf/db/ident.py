"""Quote SQL identifiers (table, column, index names): the one thing that cannot be bound.

Values always travel as bound parameters (``$1``). Identifiers cannot, so every name
that reaches SQL text goes through :func:`quote_ident`, which doubles embedded quotes
exactly as PostgreSQL's own ``quote_ident()`` does, and refuses NUL bytes and empty names.
"""

from __future__ import annotations

__all__ = ["qualified", "quote_ident"]

#: PostgreSQL truncates longer identifiers silently (NAMEDATALEN - 1 bytes).
MAX_IDENTIFIER_BYTES = 63


def quote_ident(name: str) -> str:
    """Return ``name`` as a double-quoted SQL identifier (``a"b`` → ``"a""b"``).

    Raises ValueError for an empty name, a NUL byte, or a name longer than 63 bytes
    (PostgreSQL would silently truncate it and then address another object).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"identifier must be a non-empty string, got {name!r}")
    if "\x00" in name:
        raise ValueError(f"identifier {name!r} contains a NUL byte; PostgreSQL identifiers cannot")
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise ValueError(
            f"identifier {name!r} is {len(name.encode())} bytes; PostgreSQL keeps only "
            f"{MAX_IDENTIFIER_BYTES}: choose a shorter name"
        )
    return '"' + name.replace('"', '""') + '"'


def qualified(name: str, schema: str | None = None) -> str:
    """Return ``"schema"."name"`` (or just ``"name"`` to resolve through ``search_path``)."""
    return quote_ident(name) if schema is None else f"{quote_ident(schema)}.{quote_ident(name)}"
