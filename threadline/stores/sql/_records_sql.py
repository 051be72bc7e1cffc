"""Records on the SQL stores: the layout the three dialects share, and its pure helpers.

Layout: ``<table>_recsets`` has one row per session that has records (its id, as the
sessions table keys it, a surrogate ``rid`` and ``expires_at``); ``<table>_records``
holds the records, primary key ``(rid, key)``, keys in a binary collation (SQLite's
default, PostgreSQL ``COLLATE "C"``, MySQL ``VARBINARY``) so the index order is byte
order. The two tables are apart from the sessions table, so a session with only
records is never listed and has no ``session_info``.

Expiry is per session, on the recsets row: a put with a TTL sets the deadline of every
record of the session in one row write (not one per record), a put without one leaves
it, ``expire`` sets it. Reads resolve the ``rid`` of the live row only, so expired
records are never returned; a put to an expired session first deletes its old records
(a fresh, empty record space), and ``purge_expired`` deletes expired rows and records.

Scans are one index range ``low <= key < high`` (:func:`scan_range`) on ``(rid, key)``,
in either direction, with a LIMIT: the cost follows the rows returned, not the size of
the session.
"""

from __future__ import annotations

__all__ = ["ABOVE_KEYS", "prefix_range", "scan_range"]

#: Greater than every key character (keys are ``!`` to ``~``): ``prefix + ABOVE_KEYS``
#: is above every key that starts with ``prefix``.
ABOVE_KEYS = "\x7f"
#: The least key character: ``after + LEAST`` is the least key greater than ``after``.
_LEAST = "!"


def prefix_range(prefix: str) -> tuple[str, str]:
    """``(low, high)``: the keys starting with ``prefix`` are ``low <= key < high``.

    >>> prefix_range("c/")
    ('c/', 'c/\\x7f')
    """
    return prefix, prefix + ABOVE_KEYS


def scan_range(prefix: str, after: str | None, before: str | None) -> tuple[str, str] | None:
    """The keys of a scan as ``low <= key < high`` (one index range, whatever the
    arguments), or None when no key can match. ``key > after`` is ``key >= after + "!"``
    for keys made of ``!`` to ``~`` only.

    >>> scan_range("c/", "c/7", None)
    ('c/7!', 'c/\\x7f')
    >>> scan_range("b", None, "a") is None
    True
    """
    low, high = prefix_range(prefix)
    if after is not None:
        low = max(low, after + _LEAST)
    if before is not None:
        high = min(high, before)
    return (low, high) if low < high else None
