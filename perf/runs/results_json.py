"""A measuring result as JSON: frames, numbers, strings, lists, dicts and dataclasses of them,
and objects that travel as their ``to_dict()`` (rebuilt by their class's ``from_dict()``).

What :mod:`perf.runs.replay` saves and loads. A run folder travels (an instructor records at home
and presents from a copy), so loading it must not run code it carries, which is what unpickling
does. Decoding here only builds frames and plain values and calls the ``__init__`` of a dataclass
the running program has already imported (it never imports a module a file names).

>>> decode(encode({"users": [1, 8], "best": 8.0})) == {"users": [1, 8], "best": 8.0}
True
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from typing import Any

import numpy as np
import pandas as pd


class ResultFormatError(TypeError):
    """A value outside what a saved result may hold, or a saved result that does not decode."""


def _enc(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.DataFrame | pd.Series):
        kind = "frame" if isinstance(value, pd.DataFrame) else "series"
        dtypes = value.dtypes.astype(str).to_dict() if kind == "frame" else str(value.dtype)
        return {"__" + kind + "__": value.to_json(orient="split", double_precision=15), "dtypes": dtypes}
    if isinstance(value, list | tuple):
        return {"__" + type(value).__name__ + "__": [_enc(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        return {"__dict__": [[_enc(k, f"{where} key"), _enc(v, f"{where}[{k!r}]")] for k, v in value.items()]}
    if callable(getattr(value, "to_dict", None)) and callable(getattr(type(value), "from_dict", None)):
        # an object that says how it travels (LoadResult: its histograms as HDR's compressed text)
        cls = type(value)
        return {"__record__": f"{cls.__module__}:{cls.__qualname__}", "data": _enc(value.to_dict(), where)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        fields = {f.name: _enc(getattr(value, f.name), f"{where}.{f.name}") for f in dataclasses.fields(value)}
        return {"__dataclass__": f"{cls.__module__}:{cls.__qualname__}", "fields": fields}
    raise ResultFormatError(f"{where} is a {type(value).__name__}: a replayable result holds frames, numbers, "
                            "strings, lists, dicts and dataclasses of them (return those from the measuring step)")


def encode(value: Any) -> bytes:
    """``value`` as JSON bytes; raises :class:`ResultFormatError` naming the part that cannot be saved."""
    return json.dumps(_enc(value, "result")).encode()


def _imported_class(name: str, *, record: bool = False) -> type:
    module_name, _, qualname = name.partition(":")
    found: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    usable = isinstance(found, type) and (callable(getattr(found, "from_dict", None)) if record
                                          else dataclasses.is_dataclass(found))
    if not usable:
        kind = "a class with from_dict()" if record else "a dataclass"
        raise ResultFormatError(f"saved result names {name!r}, not {kind} this program has imported "
                                "(import the module that defines it first)")
    return found  # type: ignore[no-any-return]


def _dec(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "__frame__" in value or "__series__" in value:
        frame = "__frame__" in value
        text = value["__frame__" if frame else "__series__"]
        data = pd.read_json(io.StringIO(text), orient="split", typ="frame" if frame else "series", dtype=False)
        try:
            data = data.astype(value["dtypes"])
        except (TypeError, ValueError):
            pass  # a dtype JSON cannot carry exactly (e.g. a categorical): the values stand
        return data
    if "__list__" in value:
        return [_dec(v) for v in value["__list__"]]
    if "__tuple__" in value:
        return tuple(_dec(v) for v in value["__tuple__"])
    if "__dict__" in value:
        return {_dec(k): _dec(v) for k, v in value["__dict__"]}
    if "__record__" in value:
        return _imported_class(value["__record__"], record=True).from_dict(_dec(value["data"]))  # type: ignore[attr-defined]
    if "__dataclass__" in value:
        cls = _imported_class(value["__dataclass__"])
        fields = {name: _dec(v) for name, v in value["fields"].items()}
        init = {f.name for f in dataclasses.fields(cls) if f.init}
        made = cls(**{k: v for k, v in fields.items() if k in init})
        for name, v in fields.items():
            if name not in init:
                object.__setattr__(made, name, v)
        return made
    raise ResultFormatError(f"saved result holds an unknown object {sorted(value)[:3]}")


def decode(data: bytes) -> Any:
    """The value :func:`encode` saved."""
    return _dec(json.loads(data))
