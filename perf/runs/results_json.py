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
    """A frame (or series) column by column, its index levels as leading columns, so names and levels survive.

    Values go through Python's JSON, which writes a float's shortest exact repr: a figure read back equals
    the one measured, so a replaying run's frames match the recorded run's row for row (``runs compare``).
    """
    series = isinstance(value, pd.Series)
    frame = value.to_frame(_VALUES) if series else value
    if frame.columns.nlevels > 1:
        raise ResultFormatError(f"{where} is a frame with {frame.columns.nlevels} column levels: flatten its "
                                "columns (or return the tidy frame before the pivot) from the measuring step")
    index = frame.index
    default = isinstance(index, pd.RangeIndex) and index.equals(pd.RangeIndex(len(frame))) and index.name is None
    levels = [] if default else [f"__index{i}__" for i in range(index.nlevels)]
    flat = frame if default else frame.rename_axis(levels).reset_index()
    columns = {"columns": [_enc(name, f"{where}.columns") for name in flat.columns],
               "data": [_values(flat.iloc[:, i], f"{where}[{name!r}]") for i, name in enumerate(flat.columns)]}
    encoded: dict[str, Any] = {
        "__" + ("series" if series else "frame") + "__": columns,
        "dtypes": [str(t) for t in flat.dtypes],
        "index": [_enc(n, f"{where}.index.names") for n in index.names] if levels else None,
    }
    if series:
        encoded["name"] = _enc(value.name, f"{where}.name")
    if frame.attrs:  # e.g. compare_drivers' attrs["skipped"]: why a driver did not run
        encoded["attrs"] = _enc(dict(frame.attrs), f"{where}.attrs")
    return encoded


def _values(column: pd.Series, where: str) -> list[Any]:
    if column.dtype.kind in "mM":  # times and durations as ISO 8601 text
        return [None if pd.isna(v) else v.isoformat() for v in column]
    return [None if v is pd.NA or v is pd.NaT else _enc(v, where) for v in column.tolist()]


def _column(values: list[Any], dtype: str) -> pd.Series:
    """A column's decoded ``values`` back in ``dtype``."""
    if dtype.startswith("datetime64"):
        return pd.Series(pd.to_datetime(values, utc="," in dtype)).astype(dtype)  # an aware time travels in UTC
    if dtype.startswith("timedelta64"):
        return pd.Series(pd.to_timedelta(values)).astype(dtype)
    column = pd.Series(values)
    try:
        return column.astype(dtype)
    except (TypeError, ValueError):
        return column  # a dtype JSON cannot carry exactly: the values stand


def _dec_frame(value: dict[str, Any]) -> pd.DataFrame | pd.Series:
    series = "__series__" in value
    body = value["__series__" if series else "__frame__"]
    if isinstance(body, str):
        raise ResultFormatError("a frame saved as pandas' JSON text (before columns travelled one by one)")
    columns = [_column([_dec(v) for v in values], dtype) for values, dtype in
               zip(body["data"], value["dtypes"], strict=True)]
    frame = pd.concat(columns, axis=1) if columns else pd.DataFrame()
    frame.columns = pd.Index([_dec(name) for name in body["columns"]])
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
