"""flow_api execution filters compiled to SQL ``WHERE`` clauses.

A filter is ``{'field': F, 'op': OP, 'value': V}`` with OP one of eq, ne, like, in,
lt, gt (also le, ge), or ``{'and': [...]}`` / ``{'or': [...]}`` of filters, or
``None`` for all executions.
"""

from __future__ import annotations

from typing import Any

FIELDS = frozenset(
    {"id", "type", "flow", "name", "status", "message", "parent_id", "root_id", "project",
     "created_at", "started_at", "ended_at", "flow_version", "depth"}
)
_OPS = {"eq": "=", "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">=", "like": "LIKE"}


class FilterError(ValueError):
    """The filter expression is malformed; the message says which part."""


def compile_filter(expr: Any) -> tuple[str, list[Any]]:
    if expr is None or expr == {}:
        return "1 = 1", []
    if not isinstance(expr, dict):
        raise FilterError(f"a filter must be a dict, not {type(expr).__name__}: {expr!r}")
    for combinator in ("and", "or"):
        if combinator in expr:
            parts = expr[combinator]
            if not isinstance(parts, list) or not parts:
                raise FilterError(f"'{combinator}' takes a non-empty list of filters, got {parts!r}")
            compiled = [compile_filter(p) for p in parts]
            sql = f" {combinator.upper()} ".join(f"({c[0]})" for c in compiled)
            return sql, [p for c in compiled for p in c[1]]
    field, op = expr.get("field"), expr.get("op", "eq")
    if field not in FIELDS:
        raise FilterError(f"unknown field {field!r} in filter; known fields: {', '.join(sorted(FIELDS))}")
    if "value" not in expr:
        raise FilterError(f"filter on {field!r} has no 'value'")
    value = expr["value"]
    if op == "in":
        if not isinstance(value, (list, tuple)):
            raise FilterError(f"'in' on {field!r} takes a list, got {value!r}")
        if not value:
            return "1 = 0", []
        return f"{field} IN ({','.join('?' * len(value))})", list(value)
    if op not in _OPS:
        raise FilterError(f"unknown op {op!r} in filter; use one of {', '.join(sorted([*_OPS, 'in']))}")
    return f"{field} {_OPS[op]} ?", [value]
