"""PostgreSQL URLs: the password never shown in messages, one line per failure, and the
server settings every engine session asks for."""

from __future__ import annotations

import re

from store.errors import StoreError

#: Server settings of every engine session. A host lost mid-transaction (no FIN, no RST)
#: is noticed by the server within about 5 s, and the row locks its transaction held are
#: released, instead of after the kernel's two hours; well within a lease (15 s by
#: default), so that workers blocked behind those locks keep theirs meanwhile.
SESSION_OPTIONS = "-c tcp_keepalives_idle=2 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=3 -c tcp_user_timeout=5000"


def session_options(url: str) -> str:
    """``SESSION_OPTIONS`` followed by the ``options`` of ``url``, if any (these win).
    Raises a one-line ``StoreError`` for a URL that libpq cannot read."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        theirs = conninfo_to_dict(url).get("options")
    except psycopg.Error as exc:
        raise connection_error(url, exc, "connect to") from exc
    return f"{SESSION_OPTIONS} {theirs}" if theirs else SESSION_OPTIONS


def without_password(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part left out."""
    return re.sub(r"^([^:/]+://[^:/@]*):[^@]*@", r"\1@", url)


def masked(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part shown as ``***``."""
    return re.sub(r"^([^:/]+://[^:/@]*):[^@]*@", r"\1:***@", url)


def connection_error(url: str, exc: BaseException, doing: str, after: str = "") -> StoreError:
    """One line: which database (password masked), what failed, why, what to do."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    password = re.match(r"^[^:/]+://[^:/@]*:([^@]*)@", url)
    if password and password.group(1):
        reason = reason.replace(password.group(1), "***")
    hint = ("check that the server runs and accepts connections from this host, and the user, "
            "password (PGPASSWORD or ~/.pgpass) and database name in --db")
    return StoreError(f"cannot {doing} database {masked(url)}: {reason}; {hint}." + (f" {after}" if after else ""))
