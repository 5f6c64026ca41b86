"""The engine's own invariants of a database, checked by ``engine db check`` on either
backend, in the shared SQL of the statement modules (``store.dialect``).

Each execution's events are seqs 1..N without gaps, starting with ``started``, and its
``last_seq`` is N; no event belongs to an unknown execution; an ended execution has
exactly one end event in its current attempt, with its status, and nothing after it;
leases are held only by RUNNING executions. The caller reads in one snapshot (SQLite:
one transaction; PostgreSQL: a REPEATABLE READ one), so workers may go on writing.
"""

from __future__ import annotations

from collections.abc import Iterator

from store.dialect import Conn
from store.events import AttemptStarted, ExecutionCancelled, ExecutionEnded, ExecutionStarted, decode_body
from store.model import ENDED_STATUSES, Status

_STARTED = ExecutionStarted.__struct_config__.tag
_ENDED = ExecutionEnded.__struct_config__.tag
_CANCELLED = ExecutionCancelled.__struct_config__.tag
_ATTEMPT = AttemptStarted.__struct_config__.tag
_LISTED = 5  # problems of one kind shown in full before "and N more"


def problems(conn: Conn) -> list[str]:
    """One line per broken invariant (see the module doc), by execution id; empty when sound."""
    found = [*_seq_problems(conn), *_end_problems(conn)]
    found += [
        f"execution {eid}: it is {status} but holds a lease (owner {owner}); only RUNNING executions may"
        for eid, status, owner in conn.execute(
            "SELECT id, status, lease_owner FROM executions WHERE lease_owner IS NOT NULL AND status != 'RUNNING' "
            "ORDER BY id"
        )
    ]
    return found


def _seq_problems(conn: Conn) -> Iterator[str]:
    rows = conn.execute(
        "SELECT x.id, x.last_seq, count(e.seq), coalesce(min(e.seq), 0), coalesce(max(e.seq), 0) "
        "FROM executions x LEFT JOIN events e ON e.execution_id = x.id GROUP BY x.id "
        "HAVING count(e.seq) != max(e.seq) OR min(e.seq) != 1 OR x.last_seq != coalesce(max(e.seq), 0) "
        "OR count(e.seq) = 0 ORDER BY x.id"
    ).fetchall()
    for eid, last_seq, count, low, high in rows:
        if count == 0:
            yield f"execution {eid}: it has no events (not even `started`)"
            continue
        if count != high or low != 1:
            seqs = {s for (s,) in conn.execute("SELECT seq FROM events WHERE execution_id = ?", (eid,))}
            missing = sorted(set(range(1, high + 1)) - seqs)
            shown = ", ".join(map(str, missing[:_LISTED])) + (f" and {len(missing) - _LISTED} more" if len(missing) > _LISTED else "")
            yield f"execution {eid}: events are missing from its log (seq {shown} of 1..{high})"
        if last_seq != high:
            yield f"execution {eid}: its last_seq is {last_seq} but its last event is seq {high}"
    for eid, count in conn.execute(
        "SELECT execution_id, count(*) FROM events WHERE execution_id NOT IN (SELECT id FROM executions) "
        "GROUP BY execution_id ORDER BY execution_id"
    ):
        yield f"events of unknown execution {eid}: {count} event(s) without an execution row"
    for eid, kind in conn.execute(
        f"SELECT execution_id, kind FROM events WHERE seq = 1 AND kind != '{_STARTED}' ORDER BY execution_id"
    ):
        yield f"execution {eid}: its first event is {kind!r}, not {_STARTED!r}"


def _end_problems(conn: Conn) -> Iterator[str]:
    """End events against statuses, one execution at a time, in the current attempt."""
    statuses = dict(conn.execute("SELECT id, status FROM executions ORDER BY id"))
    last = dict(conn.execute("SELECT execution_id, max(seq) FROM events GROUP BY execution_id"))
    marks: dict[str, list[tuple[int, str, str]]] = {}
    for eid, seq, kind, body in conn.execute(
        f"SELECT execution_id, seq, kind, body FROM events WHERE kind IN ('{_ENDED}', '{_CANCELLED}', '{_ATTEMPT}') "
        "ORDER BY execution_id, seq"
    ):
        decoded = decode_body(body)
        ended = decoded.status if isinstance(decoded, ExecutionEnded) else Status.ENDED_CANCELLED
        marks.setdefault(eid, []).append((seq, kind, ended))
    for eid, status in statuses.items():
        attempts: list[list[tuple[int, str]]] = [[]]
        for seq, kind, ended in marks.get(eid, []):
            if kind == _ATTEMPT:
                attempts.append([])
            else:
                attempts[-1].append((seq, ended))
        current = attempts[-1]
        if len(current) > 1:
            yield f"execution {eid}: {len(current)} end events (seqs {', '.join(str(s) for s, _ in current)}); an execution ends once"
        elif status in ENDED_STATUSES and not current:
            yield f"execution {eid}: it is {status} but its log has no end event"
        elif status not in ENDED_STATUSES and current:
            yield f"execution {eid}: it is {status} but its log ended it ({current[0][1]}) at seq {current[0][0]}"
        elif current and current[0][1] != status:
            yield f"execution {eid}: it is {status} but its end event says {current[0][1]}"
        if current and current[-1][0] != last.get(eid):
            yield f"execution {eid}: events after its end (seq {current[-1][0]}; the log goes on to seq {last.get(eid)})"
