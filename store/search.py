"""Full-text search over what executions recorded (their logs, messages and errors;
indexed by store/search_index.py), combined with the list's status and flow filters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.base import Store
from store.model import ExecutionRow
from store.open import as_sql
from store.reads import execution_row
from store.writes import EXECUTION_COLUMNS


def _phrase(word: str) -> str:
    """``word`` as an FTS5 prefix phrase: quoted (so no word is an operator), matching words it starts."""
    return '"' + word.replace('"', '""') + '"*'


#: Per dialect: a word of the log (FTS5 prefix phrase; tsquery prefix of the quoted word),
#: or part of the id, name or flow.
_WORD = {
    "sqlite": "(id IN (SELECT execution_id FROM search_text WHERE search_text MATCH ?) "
              "OR instr(lower(id || ' ' || coalesce(name, '') || ' ' || flow), ?) > 0)",
    "postgresql": "(id IN (SELECT execution_id FROM search_text WHERE "
                  "words @@ to_tsquery('simple', quote_literal(?) || ':*')) "
                  "OR strpos(lower(id || ' ' || coalesce(name, '') || ' ' || flow), ?) > 0)",
}


def _where(words: Sequence[str], status: str | None, flow: str | None, dialect: str) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for word in words:
        clauses.append(_WORD[dialect])
        params += [_phrase(word) if dialect == "sqlite" else word.lower(), word.lower()]
    for column, value in (("status", status), ("flow", flow)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(clauses) or "1 = 1", params


class Search:
    """Executions found by the words of their logs, messages and errors."""

    def __init__(self, store: Store) -> None:
        self.store = as_sql(store, "full-text search")

    def executions(self, query: str, status: str | None = None, flow: str | None = None,
                   limit: int | None = 200) -> list[ExecutionRow]:
        """The newest executions with this status and
        flow where every word of ``query`` starts a word of their log, messages or
        errors, or is part of their id, name or flow."""
        where, params = _where(query.split(), status, flow, self.store.dialect)
        sql = f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE {where} ORDER BY created_at DESC, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self.store.read(lambda conn: conn.execute(sql, params).fetchall())
        return [execution_row(r) for r in rows]
