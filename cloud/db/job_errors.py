"""How a periodic job reports a failed pass: one line for a busy or unreachable
database (it tries again next pass), a full traceback for anything else.

A SQLite database held by another writer ("database is locked") or a PostgreSQL
connection that dropped is the normal weather of a shared service; a stack trace for
each would bury the failures that are bugs.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError, OperationalError

TRANSIENT_HINTS = ("database is locked", "connection", "server closed", "timeout", "busy")


def is_transient(exc: BaseException) -> bool:
    """A failure the next pass may not meet: database busy, or its connection lost."""
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, DBAPIError) and any(h in text for h in TRANSIENT_HINTS)


def log_failed_pass(log: logging.Logger, what: str, exc: BaseException) -> None:
    """Logs `what` failed; with the traceback only when it is not a transient DB error."""
    if is_transient(exc):
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.warning("%s (will retry): %s", what, first[:200])
    else:
        log.error("%s", what, exc_info=exc)
