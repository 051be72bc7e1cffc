"""The one redaction function, and store URLs whose passwords hold URL delimiters."""

from __future__ import annotations

import pytest

from threadline import ConfigurationError
from threadline._redact import redact_url
from threadline.stores import open_store
from threadline.stores._url import StoreURL

SECRET_URLS = [
    ("postgresql://bob:AbCd/SECRET1@db.local:5432/chat", "AbCd", "SECRET1"),
    ("postgresql://bob:12345#tail@host/chat", "12345", "tail"),
    ("mysql://root:p?w=SECRET2@127.0.0.1:3306/test", "p?w", "SECRET2"),
    ("redis://:x/y#z?SECRET3@127.0.0.1:6379/0", "x/y", "SECRET3"),
    ("cosmos://acct.example?key=AbC%2BSECRET4==&database=chat", "SECRET4", "AbC"),
    ("dynamodb://AKID:wJal/rXUtn+SECRET5@chat?region=eu-west-1", "wJal", "SECRET5"),
    ("http://user:PROXYSECRET@proxy.local:8080/v1", "PROXYSECRET", "PROXYSECRET"),
]


@pytest.mark.parametrize(("url", "part1", "part2"), SECRET_URLS)
def test_redact_url_hides_every_part_of_the_secret(url: str, part1: str, part2: str) -> None:
    shown = redact_url(url)
    assert part1 not in shown and part2 not in shown, shown
    assert "***" in shown


def test_redact_url_keeps_what_is_not_secret() -> None:
    assert redact_url("sqlite:///tmp/a@b.db") == "sqlite:///tmp/a@b.db"
    assert redact_url("postgresql://bob@db/chat?ttl=60") == "postgresql://bob@db/chat?ttl=60"
    assert redact_url("file:///srv/chats") == "file:///srv/chats"
    assert redact_url("not a url") == "not a url"


def test_password_with_delimiters_is_parsed_not_leaked() -> None:
    url = StoreURL.parse("postgresql://bob:12345#tail@host/chat")
    assert (url.username, url.password, url.host, url.port) == ("bob", "12345#tail", "host", None)
    url = StoreURL.parse("postgresql://bob:Ab/Cd?SECRET1@h:5432/db")
    assert (url.password, url.host, url.port, url.database) == ("Ab/Cd?SECRET1", "h", 5432, "db")
    for text in (repr(url), str(url), url.render()):
        assert "SECRET1" not in text and "Ab/Cd" not in text
    assert url.render(hide_password=False).startswith("postgresql://bob:Ab%2FCd%3FSECRET1@h")


def test_option_secrets_hidden_in_repr() -> None:
    url = StoreURL.parse("cosmos://acct.example?key=SECRET4&database=chat")
    assert url.options["key"] == "SECRET4"
    assert "SECRET4" not in repr(url) and "key=***" in repr(url)


def test_malformed_url_error_shows_no_secret() -> None:
    with pytest.raises(ConfigurationError) as info:
        open_store("postgresql://bob@host:notaport/chat?password=SECRET6")
    assert "SECRET6" not in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        StoreURL.parse("postgresql://bob:pw@host:99999999/SECRET7db")
    assert "pw@" not in str(info.value)


def test_ambiguous_password_asks_for_quoting_without_showing_it() -> None:
    with pytest.raises(ConfigurationError, match=r"quote the password") as info:
        StoreURL.parse("postgresql://bob:p@SECRET8@db/chat")
    assert "SECRET8" not in str(info.value) and "p@" not in str(info.value)
    url = StoreURL.parse("postgresql://bob:p%40SECRET8@db/chat")  # quoted: fine
    assert url.password == "p@SECRET8" and url.host == "db"
