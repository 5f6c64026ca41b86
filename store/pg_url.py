"""PostgreSQL URLs in messages: the password never shown, and one line per failure."""

from __future__ import annotations

import re

from store.errors import StoreError


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
