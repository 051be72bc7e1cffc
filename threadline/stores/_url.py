"""Store URLs, parsed once into an immutable value that never prints its password.

>>> url = StoreURL.parse("postgresql://bob:secret@db.local:5432/chat?ttl=3600")
>>> url
StoreURL('postgresql://bob:***@db.local:5432/chat?ttl=3600')
>>> url.password, url.database, url.options["ttl"]
('secret', 'chat', '3600')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from threadline._errors import ConfigurationError
from threadline._redact import SECRET_OPTIONS, redact_url, split_userinfo

__all__ = ["StoreURL", "parse_options"]


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A parsed store URL: ``scheme://user:password@host:port/path?option=value``.

    ``scheme`` is lower-cased with any SQLAlchemy ``+driver`` suffix kept in ``driver``
    (``postgresql+psycopg://`` → scheme ``postgresql``, driver ``psycopg``).

    Several hosts may be named, comma-separated, as libpq and Redis Cluster clients take
    them (``postgresql://u@h1:5432,h2:5432/db``, ``redis+cluster://n1:7000,n2:7001``):
    ``host`` and ``port`` are the first, ``extra_hosts`` the others, :attr:`hosts` all.
    """

    scheme: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    path: str = ""
    query: tuple[tuple[str, str], ...] = ()
    driver: str | None = None
    extra_hosts: tuple[tuple[str | None, int | None], ...] = ()

    @classmethod
    def parse(cls, url: str | StoreURL) -> StoreURL:
        if isinstance(url, StoreURL):
            return url
        if not isinstance(url, str) or "://" not in url:
            raise ConfigurationError(
                f"a store URL looks like 'sqlite:///chat.db' or 'redis://localhost:6379/0', "
                f"got {redact_url(url)!r}"
            )
        raw_scheme = url.split("://", 1)[0]
        scheme, _, driver = raw_scheme.lower().partition("+")
        if not scheme or not all(c.isalnum() or c in "-." for c in scheme):
            raise ConfigurationError(f"invalid URL scheme {raw_scheme!r}")
        username = password = None
        userinfo = split_userinfo(url)
        if userinfo is not None:  # the password may hold '/', '#' or '?' unescaped
            head, user, secret, rest = userinfo
            if "@" in rest.split("/", 1)[0]:
                raise ConfigurationError(
                    f"the password in store URL {head}{user}:***@*** holds an '@', so the URL is "
                    "ambiguous: quote the password (urllib.parse.quote(password, safe=''))")
            username, password, url = unquote(user) or None, unquote(secret), head + rest
        try:
            parts = urlsplit(url)
            hosts = [_host_port(entry) for entry in _host_entries(parts.netloc)]
        except ValueError as exc:
            # The driver's text may quote part of the URL: say only what is wrong.
            raise ConfigurationError(
                f"malformed store URL {redact_url(url)!r}: the host or port is not valid "
                "(percent-encode '@', ':' and '/' inside a user name; separate several "
                "hosts with ',': h1:5432,h2:5432)") from exc
        host, port = hosts[0]
        query = tuple(parse_qsl(parts.query, keep_blank_values=True))
        names = [name for name, _ in query]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ConfigurationError(f"URL option(s) {duplicated} given more than once")
        return cls(
            scheme=scheme,
            username=username or (unquote(parts.username) if parts.username else None),
            password=password if userinfo is not None else (
                unquote(parts.password) if parts.password is not None else None),
            host=host,
            port=port,
            path=unquote(parts.path),
            query=query,
            driver=driver or None,
            extra_hosts=tuple(hosts[1:]),
        )

    @property
    def hosts(self) -> tuple[tuple[str | None, int | None], ...]:
        """Every host named, the first one first, each with its port (None: the default)."""
        return ((self.host, self.port), *self.extra_hosts)

    @property
    def options(self) -> dict[str, str]:
        return dict(self.query)

    @property
    def database(self) -> str:
        """The path without its leading slash (a database name or a file path)."""
        return self.path[1:] if self.path.startswith("/") else self.path

    def render(self, *, hide_password: bool = True, with_query: bool = True) -> str:
        """The URL as text; the password is ``***`` unless ``hide_password=False``."""
        netloc = ""
        if self.username is not None or self.password is not None:
            netloc = quote(self.username or "", safe="")
            if self.password is not None:
                netloc += ":" + ("***" if hide_password else quote(self.password, safe=""))
            netloc += "@"
        netloc += ",".join(_render_host(host, port) for host, port in self.hosts)
        scheme = f"{self.scheme}+{self.driver}" if self.driver else self.scheme
        text = f"{scheme}://{netloc}{quote(self.path, safe='/:')}"
        if with_query and self.query:
            query = self.query if not hide_password else tuple(
                (k, "***" if k.lower() in SECRET_OPTIONS and v else v) for k, v in self.query)
            text += "?" + urlencode(query, safe="*")
        return text

    def without_options(self, *names: str) -> StoreURL:
        return StoreURL(self.scheme, self.username, self.password, self.host, self.port,
                        self.path, tuple((k, v) for k, v in self.query if k not in names),
                        self.driver, self.extra_hosts)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"StoreURL({self.render()!r})"


def _host_entries(netloc: str) -> list[str]:
    """The ``host[:port]`` entries of a netloc, one unless several are comma-separated."""
    userinfo, at, hosts = netloc.rpartition("@")
    entries = hosts.split(",")
    if len(entries) > 1 and not all(entries):
        raise ValueError("an empty host between commas")
    return [userinfo + at + entry for entry in entries]


def _host_port(netloc: str) -> tuple[str | None, int | None]:
    port = urlsplit("//" + netloc).port  # ValueError for a port that is not a number
    return _host(netloc, port), port


def _render_host(host: str | None, port: int | None) -> str:
    text = (f"[{host}]" if ":" in host else host) if host else ""
    return text if port is None else f"{text}:{port}"


def _host(netloc: str, port: int | None) -> str | None:
    """The host as written: ``urlsplit().hostname`` lower-cases it, but for some schemes
    it names something case-sensitive (a DynamoDB table)."""
    host = netloc.rpartition("@")[2]
    if host.startswith("["):
        host = host[1:host.find("]")]
    elif port is not None or host.endswith(":"):
        host = host.rpartition(":")[0]
    return unquote(host) or None


def _to_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean (use true or false)")


def _parser(kind: Callable[[str], Any]) -> Callable[[Any], Any]:
    if kind is bool:
        return lambda v: v if isinstance(v, bool) else _to_bool(str(v))
    return lambda v: v if not isinstance(v, str) else kind(v)


def parse_options(
    url: StoreURL, given: Mapping[str, Any], spec: Mapping[str, Callable[[str], Any]]
) -> dict[str, Any]:
    """Merge URL query options and keyword options (keywords win), typed by ``spec``.

    ``spec`` maps each accepted option to its type (``int``, ``float``, ``bool``, ``str``
    or a parsing function). Unknown options are a :class:`ConfigurationError` listing the
    valid ones.
    """
    merged: dict[str, Any] = {**url.options, **given}
    unknown = sorted(set(merged) - set(spec))
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {unknown} for {url.scheme}:// stores; "
            f"valid options: {sorted(spec)}"
        )
    out: dict[str, Any] = {}
    for name, value in merged.items():
        if value is None:
            out[name] = None
            continue
        try:
            out[name] = _parser(spec[name])(value)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"invalid value for option {name!r}: {exc}") from exc
    return out
