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

_VALUES = "__values__"  # a series travels as a one-column frame


class ResultFormatError(TypeError):
    """A value outside what a saved result may hold, or a saved result that does not decode."""


def _enc(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.DataFrame | pd.Series):
        return _enc_frame(value, where)
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


def _enc_frame(value: pd.DataFrame | pd.Series, where: str) -> dict[str, Any]:
    """A frame (or series) with its index levels as leading columns, so names and levels survive."""
    series = isinstance(value, pd.Series)
    frame = value.to_frame(_VALUES) if series else value
    if frame.columns.nlevels > 1:
        raise ResultFormatError(f"{where} is a frame with {frame.columns.nlevels} column levels: flatten its "
                                "columns (or return the tidy frame before the pivot) from the measuring step")
    index = frame.index
    default = isinstance(index, pd.RangeIndex) and index.equals(pd.RangeIndex(len(frame))) and index.name is None
    levels = [] if default else [f"__index{i}__" for i in range(index.nlevels)]
    flat = frame if default else frame.rename_axis(levels).reset_index()
    encoded: dict[str, Any] = {
        "__" + ("series" if series else "frame") + "__": flat.to_json(orient="split", index=False,
                                                                      double_precision=15, date_format="iso",
                                                                      date_unit="ns"),
        "dtypes": [str(t) for t in flat.dtypes],
        "index": [_enc(n, f"{where}.index.names") for n in index.names] if levels else None,
    }
    if series:
        encoded["name"] = _enc(value.name, f"{where}.name")
    if frame.attrs:  # e.g. compare_drivers' attrs["skipped"]: why a driver did not run
        encoded["attrs"] = _enc(dict(frame.attrs), f"{where}.attrs")
    return encoded


def _column(values: pd.Series, dtype: str) -> pd.Series:
    """``values`` as read from JSON (times and durations as ISO 8601 text) back in ``dtype``."""
    if dtype.startswith("datetime64"):
        return pd.to_datetime(values, utc="," in dtype).astype(dtype)  # an aware time travels in UTC
    if dtype.startswith("timedelta64"):
        return pd.to_timedelta(values).astype(dtype)
    return values.astype(dtype)


def _dec_frame(value: dict[str, Any]) -> pd.DataFrame | pd.Series:
    series = "__series__" in value
    text = value["__series__" if series else "__frame__"]
    if "index" not in value:  # saved before index levels travelled: the frame or series as pandas wrote it
        data = pd.read_json(io.StringIO(text), orient="split", typ="series" if series else "frame", dtype=False)
        try:
            data = data.astype(value["dtypes"])
        except (TypeError, ValueError):
            pass
        return data
    frame = pd.read_json(io.StringIO(text), orient="split", typ="frame", dtype=False)
    for column, dtype in zip(list(frame.columns), value["dtypes"], strict=True):
        try:
            frame[column] = _column(frame[column], dtype)
        except (TypeError, ValueError):
            pass  # a dtype JSON cannot carry exactly: the values stand
    if value["index"] is not None:
        levels = [f"__index{i}__" for i in range(len(value["index"]))]
        frame = frame.set_index(levels).rename_axis([_dec(n) for n in value["index"]])
    if "attrs" in value:
        frame.attrs.update(_dec(value["attrs"]))
    if series:
        return frame[_VALUES].rename(_dec(value["name"]))
    return frame


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
        return _dec_frame(value)
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
