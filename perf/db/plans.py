"""EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) as a structured, always-rolled-back result.

``EXPLAIN ANALYZE`` really executes the statement: ``EXPLAIN ANALYZE DELETE FROM t``
deletes the rows. :func:`explain` therefore runs it inside a transaction (a savepoint
if the connection is already in one) that is always rolled back, and sends it as one
prepared statement, which PostgreSQL refuses to build from more than one command — so
``"SELECT 1; DROP TABLE t"`` is rejected before anything runs. It runs under a
``statement_timeout`` (``SET LOCAL``, gone with the rollback), so a runaway query is
cancelled instead of holding the connection.

What a rollback cannot undo: sequence steps (``nextval``, an INSERT's serial id: the
ids are used up), session-level advisory locks (``pg_advisory_lock``: :func:`explain`
releases the ones the statement took), and anything outside the database (``dblink``,
``COPY ... TO PROGRAM``, files written by server functions).

The result (:class:`ExplainResult`) carries planning and execution time, the plan as a
tree of :class:`PlanNode` (node type, relation, index, estimated vs actual rows,
buffers) and renders as a readable tree with :meth:`ExplainResult.tree`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pandas as pd

__all__ = ["ExplainResult", "PlanNode", "explain"]

_DETAIL_KEYS = ("Index Cond", "Recheck Cond", "Hash Cond", "Merge Cond", "Join Filter", "Filter", "Sort Key")


@dataclass(frozen=True)
class PlanNode:
    """One node of a plan. ``actual_*`` are None without ANALYZE (or when never executed)."""

    node_type: str
    relation: str | None
    index: str | None
    estimated_rows: float
    actual_rows: float | None  # total over all loops
    loops: int | None
    actual_ms: float | None  # inclusive time of this node, total over all loops
    shared_hit: int
    shared_read: int
    detail: str
    children: tuple[PlanNode, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, node: dict[str, Any]) -> PlanNode:
        """Build the tree from one ``"Plan"`` object of ``FORMAT JSON`` output."""
        loops = node.get("Actual Loops")
        actual_rows = node.get("Actual Rows")
        actual_ms = node.get("Actual Total Time")
        detail = "; ".join(f"{k}: {node[k] if isinstance(node[k], str) else ', '.join(node[k])}"
                           for k in _DETAIL_KEYS if k in node)
        return cls(
            node_type=node["Node Type"],
            relation=node.get("Relation Name"),
            index=node.get("Index Name"),
            estimated_rows=float(node.get("Plan Rows", 0)),
            actual_rows=None if actual_rows is None or loops is None else float(actual_rows) * loops,
            loops=loops,
            actual_ms=None if actual_ms is None or loops is None else float(actual_ms) * loops,
            shared_hit=int(node.get("Shared Hit Blocks", 0)),
            shared_read=int(node.get("Shared Read Blocks", 0)),
            detail=detail,
            children=tuple(cls.from_json(child) for child in node.get("Plans", ())),
            raw=node,
        )

    def walk(self, depth: int = 0) -> Iterator[tuple[int, PlanNode]]:
        """Yield ``(depth, node)`` for this node and its descendants, depth-first."""
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)

    def label(self) -> str:
        """One line: node type, target, estimated vs actual rows, time and buffers."""
        target = ""
        if self.index:
            target = f" using {self.index}"
        if self.relation:
            target += f" on {self.relation}"
        if self.actual_rows is None:
            rows = f"est {self.estimated_rows:,.0f} rows"
        else:
            # Over several loops (nested-loop inner side, parallel workers) times are summed.
            loops = f" over {self.loops} loops" if self.loops and self.loops > 1 else ""
            rows = (f"est {self.estimated_rows:,.0f} → actual {self.actual_rows:,.0f} rows, "
                    f"{self.actual_ms:.3f} ms{loops}")
        buffers = (f", buffers hit {self.shared_hit} read {self.shared_read}"
                   if self.shared_hit or self.shared_read else "")
        return f"{self.node_type}{target}  ({rows}{buffers})"


@dataclass(frozen=True)
class ExplainResult:
    """The parsed output of one ``EXPLAIN (FORMAT JSON)``."""

    sql: str
    planning_ms: float | None
    execution_ms: float | None
    root: PlanNode
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def nodes(self) -> list[PlanNode]:
        """Every node, depth-first from the root."""
        return [node for _, node in self.root.walk()]

    @property
    def node_types(self) -> list[str]:
        """Node types depth-first, e.g. ``['Limit', 'Index Scan']``."""
        return [node.node_type for node in self.nodes]

    @property
    def indexes_used(self) -> list[str]:
        """Names of the indexes any node scans."""
        return [node.index for node in self.nodes if node.index]

    @property
    def seq_scanned(self) -> list[str]:
        """Relations read by a sequential scan."""
        return [node.relation or "?" for node in self.nodes if node.node_type == "Seq Scan"]

    @property
    def shared_hit(self) -> int:
        """Shared buffers found in cache (the root's total, which includes its children)."""
        return self.root.shared_hit

    @property
    def shared_read(self) -> int:
        """Shared buffers read from disk or the OS cache."""
        return self.root.shared_read

    def tree(self, *, details: bool = True) -> str:
        """The plan as an indented tree, one node a line (plus its conditions)."""
        lines = []
        for depth, node in self.root.walk():
            prefix = "" if depth == 0 else "   " * (depth - 1) + "└─ "
            lines.append(prefix + node.label())
            if details and node.detail:
                lines.append("   " * depth + "   " + node.detail)
        timing = []
        if self.planning_ms is not None:
            timing.append(f"planning {self.planning_ms:.3f} ms")
        if self.execution_ms is not None:
            timing.append(f"execution {self.execution_ms:.3f} ms")
        if timing:
            lines.append(", ".join(timing))
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """One row per node: depth, node_type, relation, index, estimated/actual rows, ms, buffers."""
        rows = [
            {"depth": depth, "node_type": n.node_type, "relation": n.relation, "index": n.index,
             "estimated_rows": n.estimated_rows, "actual_rows": n.actual_rows, "actual_ms": n.actual_ms,
             "shared_hit": n.shared_hit, "shared_read": n.shared_read}
            for depth, n in self.root.walk()
        ]
        return pd.DataFrame(rows)

    def __str__(self) -> str:
        return self.tree()


_ADVISORY = ("SELECT classid::bigint, objid::bigint, objsubid, mode FROM pg_locks "
             "WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted")


async def _release_new_advisory_locks(conn: asyncpg.Connection, before: list[Any]) -> None:
    held = {tuple(r) for r in before}
    for classid, objid, objsubid, mode in (tuple(r) for r in await conn.fetch(_ADVISORY)):
        if (classid, objid, objsubid, mode) in held:
            continue
        shared = "_shared" if mode == "ShareLock" else ""
        if objsubid == 1:  # one bigint key, split in two 32-bit halves
            await conn.fetchval(f"SELECT pg_advisory_unlock{shared}($1::bigint)", (classid << 32) | objid)
        else:  # two int4 keys
            await conn.fetchval(f"SELECT pg_advisory_unlock{shared}($1::int, $2::int)", classid, objid)


async def explain(conn: asyncpg.Connection, sql: str, *args: Any, analyze: bool = True,
                  buffers: bool = True, timeout: float = 30.0) -> ExplainResult:
    """Run ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) <sql>`` with bound ``args``; roll back.

    ``sql`` must be ONE statement (parameters as ``$1``…); anything else raises
    ValueError. With ``analyze=True`` the statement really runs, inside a transaction
    (or savepoint) that is always rolled back, so a DELETE or INSERT changes nothing
    (sequence steps excepted, see the module docstring), under a ``statement_timeout``
    of ``timeout`` seconds (TimeoutError when it fires).
    """
    if not isinstance(sql, str) or not sql.strip():
        raise ValueError(f"sql must be a non-empty SQL statement, got {sql!r}")
    if not 0 < timeout <= 3600:
        raise ValueError(f"timeout={timeout!r} must be in (0, 3600] seconds")
    options = ", ".join(
        opt for opt, on in (("ANALYZE", analyze), ("BUFFERS", buffers), ("FORMAT JSON", True)) if on
    )
    locks = await conn.fetch(_ADVISORY)
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
        # fetchval prepares the statement: the server rejects more than one command.
        text = await conn.fetchval(f"EXPLAIN ({options}) {sql}", *args)
    except asyncpg.PostgresSyntaxError as exc:
        if "multiple commands" in str(exc):
            raise ValueError(
                f"sql must be a single statement; got several: {sql!r}. Explain them one at a time."
            ) from exc
        raise
    except asyncpg.QueryCanceledError as exc:
        raise TimeoutError(f"EXPLAIN of {sql[:80]!r} ran over timeout={timeout} s and was cancelled; "
                           "pass a larger timeout or explain without analyze") from exc
    finally:
        await tx.rollback()
        await _release_new_advisory_locks(conn, locks)
    document = json.loads(text)[0] if isinstance(text, str) else text[0]
    return ExplainResult(
        sql=sql,
        planning_ms=document.get("Planning Time"),
        execution_ms=document.get("Execution Time"),
        root=PlanNode.from_json(document["Plan"]),
        raw=document,
    )
