"""How the PostgreSQL store connects, and what a failure to connect means (pure).

* :func:`conninfo` turns a store URL into libpq's ``key=value`` string: every host of a
  multi-host URL (``host=h1,h2 port=p1,p2``: libpq, through psycopg, tries them in turn
  and keeps the one ``target_session_attrs`` asks for) and the libpq parameters of
  :data:`LIBPQ_OPTIONS`, passed as they are.
* :func:`parse_prepare_threshold` reads the ``prepare_threshold`` option: psycopg
  prepares a statement on the server after it ran it that many times on a connection;
  ``none`` never does, which a transaction pooler needs (it runs each transaction on any
  server connection, where the client's prepared statements are not). A pooler cannot be
  detected from a connection; the errors it causes are recognised by
  :data:`POOLED_PREPARE` and explained with :data:`POOLER_HINT`.
* :func:`connection_error` says which part of connecting failed, from libpq's text (a
  connection failure carries no SQLSTATE): the database is missing (the server let us
  in), the login was refused, or the server did not answer.
"""

from __future__ import annotations

import re
from typing import Any

from threadline._errors import ConfigurationError, StoreConnectionError
from threadline.stores._url import StoreURL

__all__ = ["DEFAULT_PREPARE_THRESHOLD", "LIBPQ_OPTIONS", "POOLED_PREPARE", "POOLER_HINT",
           "connection_error", "conninfo", "parse_prepare_threshold"]

#: libpq connection parameters a URL may carry, passed to the driver as they are:
#: failover (``target_session_attrs``, ``load_balance_hosts``), TLS, keepalives. Not
#: ``options`` (server settings for the session: PgBouncer refuses the connection).
LIBPQ_OPTIONS = (
    "application_name", "channel_binding", "gssencmode", "hostaddr", "keepalives",
    "keepalives_count", "keepalives_idle", "keepalives_interval", "krbsrvname",
    "load_balance_hosts", "passfile", "require_auth", "ssl_max_protocol_version",
    "ssl_min_protocol_version", "sslcert", "sslcrl", "sslcrldir", "sslkey", "sslmode",
    "sslnegotiation", "sslpassword", "sslrootcert", "sslsni", "target_session_attrs",
    "tcp_user_timeout")

#: psycopg's default ``prepare_threshold``.
DEFAULT_PREPARE_THRESHOLD = 5

#: A statement name a transaction pooler mixed up between clients: psycopg names its
#: prepared statements per connection (``_pg3_0``...), the server connection is shared.
POOLED_PREPARE = re.compile(r"prepared statement \S+ (already exists|does not exist)"
                            r"|bind message supplies \d+ parameters, but prepared statement")
POOLER_HINT = (" (a transaction pooler, such as PgBouncer in transaction mode, runs each "
               "transaction on any server connection, where psycopg's prepared statements "
               "are not: add prepare_threshold=none to the store URL)")

_NO_DATABASE = re.compile(r'FATAL:\s+database "([^"\n]*)" does not exist')
_LOGIN_REFUSED = re.compile(
    r"FATAL:\s+(password authentication failed|role \S+ does not exist|no pg_hba\.conf"
    r"|.*authentication failed)|fe_sendauth|SCRAM|permission denied for database"
    r"|not permitted to log in")


def conninfo(url: StoreURL, options: dict[str, Any]) -> str:
    """libpq's ``key=value`` string: every host of the URL (``host=h1,h2 port=p1,p2``,
    an empty port for a host named without one) and the libpq options given."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import make_conninfo

    hosts = url.hosts
    ports = [str(port) if port is not None else "" for _, port in hosts]
    params: dict[str, Any] = {
        "host": ",".join(host or "" for host, _ in hosts) or None,
        "port": ",".join(ports) if any(ports) else None,
        "dbname": url.database or None,
        "user": url.username,
        "password": url.password,
        **{name: options.get(name) for name in LIBPQ_OPTIONS},
    }
    try:
        return make_conninfo("", **{k: v for k, v in params.items() if v is not None})
    except ProgrammingError as exc:  # a value libpq cannot parse
        reason = str(exc)
        for secret in (url.password, options.get("sslpassword")):
            if secret:
                reason = reason.replace(secret, "***")
        raise ConfigurationError(
            f"invalid PostgreSQL connection options in {url.render()!r}: {reason}") from exc


def parse_prepare_threshold(value: str) -> int | None:
    """psycopg's ``prepare_threshold``: executions of a statement before it is prepared
    on the server; ``none`` / ``off`` never prepares (for transaction poolers)."""
    if value.strip().lower() in ("none", "off", "false", "no", "never"):
        return None
    threshold = int(value)
    if threshold < 0:
        raise ValueError(f"{value!r} is negative (a count of executions, or none)")
    return threshold


def connection_error(url: StoreURL, what: str, reason: str) -> StoreConnectionError:
    """The error for a failure to ``what`` (connect to, query...) the server, saying
    which part failed. With several hosts libpq reports every attempt: a server that
    answered ("no such database", "login refused") tells more than one that did not.
    ``reason`` is the driver's text, without secrets."""
    where = url.render(with_query=False)
    missing = _NO_DATABASE.search(reason)
    if missing:
        name = missing.group(1)
        flags = "".join(f" {flag} {value}" for flag, value in (
            ("-h", url.host), ("-p", url.port), ("-U", url.username)) if value is not None)
        return StoreConnectionError(
            f"cannot {what} PostgreSQL at {where}: the server is up and accepted the "
            f"login, but database {name!r} does not exist. Create it (createdb{flags} "
            f"{name}, or CREATE DATABASE in psql); threadline creates its tables in it by "
            "itself (threadline db init creates them ahead of time), never the database. "
            f"The server said: {reason}", part="database")
    if _LOGIN_REFUSED.search(reason):
        return StoreConnectionError(
            f"cannot {what} PostgreSQL at {where}: the server is up but refused the login "
            "(authentication): check the user name and password in the URL, and that "
            f"pg_hba.conf lets this user in from here. The server said: {reason}",
            part="authentication")
    if what == "connect to":
        hosts = ", ".join(f"{host or 'localhost'}:{port or 5432}" for host, port in url.hosts)
        return StoreConnectionError(
            f"cannot connect to PostgreSQL at {where}: the server is unreachable (is it "
            f"running and listening on {hosts}?): {reason}")
    return StoreConnectionError(f"cannot {what} PostgreSQL at {where}: {reason}")
