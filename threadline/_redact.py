"""One way to show a URL without its secrets, used wherever a URL reaches a person.

Store URLs and model base URLs may carry a password (``postgresql://bob:pw@db/chat``,
``http://user:PROXYSECRET@proxy/v1``) or a key in an option (``?key=...``). Every
message, banner, log line and repr that shows one renders it with :func:`redact_url`,
which works on text that does not parse as a URL too (a password holding ``/``, ``#``
or ``?`` unescaped, as Cosmos DB keys and AWS secret keys often do).

>>> redact_url("postgresql://bob:s3cr/et#x?y@db.local:5432/chat?ttl=60")
'postgresql://bob:***@db.local:5432/chat?ttl=60'
>>> redact_url("cosmos://acct.example?key=AbC%2B==&database=chat")
'cosmos://acct.example?key=***&database=chat'
>>> redact_url("sqlite:///tmp/a@b.db")
'sqlite:///tmp/a@b.db'
"""

from __future__ import annotations

import re

__all__ = ["SECRET_OPTIONS", "redact_text", "redact_url", "split_userinfo"]

#: URL options whose value is a secret (compared case-insensitively).
SECRET_OPTIONS = frozenset({
    "key", "account_key", "master_key", "password", "passwd", "secret", "token",
    "api_key", "apikey", "access_key", "secret_key", "aws_secret_access_key",
    "aws_session_token", "sslpassword", "auth", "credential", "credentials",
})

# scheme://user:password@rest: the user part has no ':', '/' or '@'; the password runs to
# the first '@' and may hold '/', '#', '?' unescaped (as SQLAlchemy's URL pattern allows).
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@?#]*)"
                       r":(?P<password>[^@]*)@(?P<rest>.*)", re.DOTALL)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
_OPTION = re.compile(r"(?P<sep>[?&;])(?P<name>[^=&;#]+)=(?P<value>[^&;#]*)")


def split_userinfo(url: str) -> tuple[str, str, str, str] | None:
    """``(scheme_and_slashes, user, password, rest)`` when ``url`` has a password, the
    password taken literally up to the first ``@`` (still percent-encoded); else None."""
    match = _USERINFO.fullmatch(url)
    if match is None:
        return None
    return match["scheme"], match["user"], match["password"], match["rest"]


def redact_url(url: object) -> str:
    """``url`` as text with its password and secret-looking options shown as ``***``."""
    text = str(url)
    parts = split_userinfo(text)
    if parts is not None:
        scheme, user, _password, rest = parts
        text = f"{scheme}{user}:***@{rest}"
    if "=" in text:
        text = _OPTION.sub(_mask_option, text)
    return text


def _mask_option(match: re.Match[str]) -> str:
    if match["name"].strip().lower() in SECRET_OPTIONS and match["value"]:
        return f"{match['sep']}{match['name']}=***"
    return match[0]


def redact_text(text: str) -> str:
    """``text`` with every URL in it rendered by :func:`redact_url` (a last line of
    defence for error messages that reach a person or a client: messages should already
    show redacted URLs)."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda match: redact_url(match[0]), text)
