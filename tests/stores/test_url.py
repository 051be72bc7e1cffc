from __future__ import annotations

import pytest

from threadline import ConfigurationError
from threadline.stores import StoreURL, open_store
from threadline.stores._url import parse_options


def test_parse_fields_and_redaction() -> None:
    url = StoreURL.parse("postgresql+psycopg://bob:s%40cret@db.local:5433/chat?ttl=60&table=t")
    assert (url.scheme, url.driver, url.username, url.password) == (
        "postgresql",
        "psycopg",
        "bob",
        "s@cret",
    )
    assert (url.host, url.port, url.database) == ("db.local", 5433, "chat")
    assert url.options == {"ttl": "60", "table": "t"}
    for shown in (repr(url), str(url), url.render()):
        assert "s@cret" not in shown and "s%40cret" not in shown and "***" in shown
    assert url.render(hide_password=False) == (
        "postgresql+psycopg://bob:s%40cret@db.local:5433/chat?ttl=60&table=t"
    )
    again = StoreURL.parse(url.render(hide_password=False))
    assert (again.password, again.host, again.options) == (url.password, url.host, url.options)


def test_host_case_is_kept_and_ipv6_works() -> None:
    assert StoreURL.parse("dynamodb://MyTable?region=eu-west-1").host == "MyTable"
    ipv6 = StoreURL.parse("redis://[::1]:6380/2")
    assert (ipv6.host, ipv6.port, ipv6.database) == ("::1", 6380, "2")
    assert ipv6.render() == "redis://[::1]:6380/2"


@pytest.mark.parametrize("path", ["sqlite:///rel.db", "sqlite:////abs/x.db", "sqlite://"])
def test_sqlite_paths(path: str) -> None:
    expected = {"sqlite:///rel.db": "rel.db", "sqlite:////abs/x.db": "/abs/x.db", "sqlite://": ""}[
        path
    ]
    assert StoreURL.parse(path).database == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "chat.db",
        "postgresql://u:pw@h:99999/x",
        "://x",
        "post gres://x",
        42,
        "redis://h/0?db=1&db=2",
    ],
)
def test_malformed_urls_are_configuration_errors_without_passwords(bad: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        StoreURL.parse(bad)  # type: ignore[arg-type]
    assert "pw" not in str(info.value)


def test_unknown_scheme_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"valid schemes: .*'sqlite'"):
        open_store("oracle://scott:tiger@db/x")


def test_options_are_typed_and_unknown_ones_rejected() -> None:
    url = StoreURL.parse("x://h?ttl=1.5&verbose=yes")
    spec = {"ttl": float, "verbose": bool, "size": int}
    assert parse_options(url, {"size": "3"}, spec) == {"ttl": 1.5, "verbose": True, "size": 3}
    assert parse_options(url, {"ttl": 9}, spec)["ttl"] == 9
    with pytest.raises(ConfigurationError, match=r"unknown option\(s\) \['colour'\].*valid"):
        parse_options(url, {"colour": "red"}, spec)
    with pytest.raises(ConfigurationError, match="invalid value for option 'size'"):
        parse_options(url, {"size": "many"}, spec)
    with pytest.raises(ConfigurationError, match="not a boolean"):
        parse_options(StoreURL.parse("x://h?verbose=perhaps"), {}, spec)


def test_several_hosts_as_libpq_and_redis_cluster_name_them() -> None:
    url = StoreURL.parse("postgresql://bob:s3cret@h1:5432,[::1]:5433,h3/chat"
                         "?target_session_attrs=read-write")
    assert (url.host, url.port) == ("h1", 5432)
    assert url.hosts == (("h1", 5432), ("::1", 5433), ("h3", None))
    assert url.database == "chat"
    assert url.options == {"target_session_attrs": "read-write"}
    assert str(url) == ("postgresql://bob:***@h1:5432,[::1]:5433,h3/chat"
                        "?target_session_attrs=read-write")
    assert StoreURL.parse(url.render(hide_password=False)) == url
    assert url.without_options("target_session_attrs").hosts == url.hosts
    cluster = StoreURL.parse("redis+cluster://n1:7000,n2:7001/")
    assert (cluster.scheme, cluster.driver) == ("redis", "cluster")
    assert cluster.hosts == (("n1", 7000), ("n2", 7001))
    single = StoreURL.parse("redis://localhost:6379/0")
    assert single.hosts == (("localhost", 6379),) and single.extra_hosts == ()


@pytest.mark.parametrize("bad", ["postgresql://u:pw@h1:5432,,h2/db",
                                 "postgresql://u:pw@h1:5432,h2:port/db",
                                 "redis+cluster://n1:7000,/"])
def test_a_malformed_host_list_is_refused_without_the_password(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="host or port") as caught:
        StoreURL.parse(bad)
    assert "pw" not in str(caught.value)


def test_the_driver_is_rendered_back() -> None:
    assert str(StoreURL.parse("redis+cluster://n1:7000,n2:7001/?key_prefix=c:")) == (
        "redis+cluster://n1:7000,n2:7001/?key_prefix=c%3A")
    assert StoreURL.parse("postgresql+psycopg://u:pw@h/db").render() == (
        "postgresql+psycopg://u:***@h/db")
