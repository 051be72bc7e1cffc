"""Cosmos DB sessions as objects: the head's fields, the listing queries, stats, the
layout upgrade; the contract itself runs in test_sessions.py (id "cosmos").

Pure checks look at the documents and queries the operations produce (the production
append path cannot run on the emulator); the rest runs on @vercel/cosmosdb-server.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from threadline import AIMessage, HumanMessage, InputError
from threadline.stores import open_store
from threadline.stores._sessions import SessionChanges, check_list_args, recent_cursor
from threadline.stores.cosmos._docs import (
    HEAD_ID,
    META_PK,
    SessionState,
    _head_body,
    partition_key,
    plan_append,
    recent_key,
)
from threadline.stores.cosmos._ops import _Query
from threadline.stores.cosmos._session_docs import apply_changes, list_query
from threadline.stores.cosmos._store import CosmosStore

from .cosmos_server import shared_server

NOW = 1_700_000_000.0
HOSTILE = "x'] OR 1=1 -- \" @p ${} \\"

# -- pure: documents and queries -------------------------------------------------------------


def test_recent_key_sorts_as_updated_then_id() -> None:
    keys = [recent_key(NOW, "b"), recent_key(NOW, "a"), recent_key(NOW + 0.000_001, "a"),
            recent_key(9.5, "z"), recent_key(NOW + 10, "a")]
    assert sorted(keys) == [keys[3], keys[1], keys[0], keys[2], keys[4]]
    assert recent_key(NOW, "s|x").endswith("|s|x") and len(recent_key(0, "")) == 21


def test_changes_set_keep_and_clear_fields() -> None:
    head = {"ti": "T", "md": {"a": "b"}, "ow": "u", "pa": "src", "fp": 0, "n": 3}
    assert apply_changes(head, SessionChanges(title="New")) == {
        "ti": "New", "md": {"a": "b"}, "ow": "u", "pa": "src", "fp": 0}
    assert apply_changes(head, SessionChanges(title=None, metadata=None)) == {
        "ow": "u", "pa": "src", "fp": 0}
    assert apply_changes(head, SessionChanges(metadata={})) == {
        "ti": "T", "ow": "u", "pa": "src", "fp": 0}
    assert apply_changes(None, SessionChanges(owner="o")) == {"ow": "o"}


def test_every_head_rewrite_keeps_the_session_fields() -> None:
    fields = {"ti": "T", "md": {"k": "v"}, "ow": "u", "pa": "p", "fp": 2}
    head = {**_head_body("pk", "s", 1, 2, NOW, NOW, None, NOW, carry=fields), "_etag": "e"}
    assert {key: head[key] for key in fields} == fields
    assert head["r"] == recent_key(NOW, "s")
    live = plan_append(SessionState(head, 2), "s", ["m"], NOW + 5, None)
    assert {key: live.head[key] for key in fields} == fields  # the production batch's head
    assert live.head["r"] == recent_key(NOW + 5, "s")
    expired = {**head, "x": NOW + 1}
    again = plan_append(SessionState(expired, 2), "s", ["m"], NOW + 9, None)
    assert not set(fields) & set(again.head)  # a new incarnation starts bare


def _query(**args: Any) -> tuple[str, dict[str, Any]]:
    return list_query(check_list_args(**args), NOW)


def test_listing_queries_carry_user_data_only_as_parameters() -> None:
    sql, params = _query(order="recent", owner=HOSTILE, prefix=HOSTILE,
                         metadata={HOSTILE: HOSTILE, "a.b": "c"}, limit=7)
    assert HOSTILE not in sql and "a.b" not in sql
    assert "c.md[@mk0] = @mv0" in sql and "c.md[@mk1] = @mv1" in sql
    assert (params["@mk0"], params["@mv0"], params["@mk1"]) == (HOSTILE, HOSTILE, "a.b")
    assert params["@o"] == HOSTILE and params["@p"] == HOSTILE and params["@k"] == 8
    assert sql.endswith("ORDER BY c.r DESC") and "c.r <" not in sql
    sql, params = _query(order="id", owner="u", cursor="b", prefix="a")
    assert sql.endswith("ORDER BY c.sid") and params["@cur"] == "b"
    sql, params = _query(order="recent", cursor=recent_cursor(recent_key(NOW, "s"), "s"))
    assert "c.r < @cur" in sql and params["@cur"] == recent_key(NOW, "s")


@pytest.mark.parametrize("cursor", [
    recent_cursor(NOW, "s"),  # another backend's (a float)
    recent_cursor(recent_key(NOW, "s"), "t"),  # not this id's key
    recent_cursor("12|s", "s"),
    "garbage",
])
def test_foreign_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InputError):
        _query(order="recent", cursor=cursor)


# -- on the emulator ----------------------------------------------------------------------------


@pytest.fixture
def store() -> Iterator[CosmosStore]:
    opened = open_store(shared_server().url(f"s_{secrets.token_hex(5)}"))
    assert isinstance(opened, CosmosStore)
    try:
        yield opened
    finally:
        opened.destroy()
        opened.close()


def _head(store: CosmosStore, sid: str) -> dict[str, Any]:
    (head,) = store._drive(_one(partition_key(sid)))
    return dict(head)


def _one(pk: str) -> Any:
    docs = yield _Query("SELECT * FROM c WHERE c.pk = @pk AND c.id = @id",
                        {"@pk": pk, "@id": HEAD_ID}, pk)
    return docs


def test_fields_live_on_the_head_and_survive_appends_and_expire(store: CosmosStore) -> None:
    store.append("s", [HumanMessage("q")])
    store.update_session("s", title="T", metadata={HOSTILE: "v"}, owner="u")
    before = _head(store, "s")
    assert (before["ti"], before["md"], before["ow"]) == ("T", {HOSTILE: "v"}, "u")
    time.sleep(0.02)
    store.append("s", [AIMessage("a")])  # the emulator path bumps the head, ttl or not
    head = _head(store, "s")
    assert (head["ti"], head["md"], head["ow"], head["n"]) == ("T", {HOSTILE: "v"}, "u", 2)
    assert head["u"] > before["u"] and head["r"] == recent_key(head["u"], "s")
    store.expire("s", 60)
    head = _head(store, "s")
    assert (head["ti"], head["md"], head["ow"], head["n"]) == ("T", {HOSTILE: "v"}, "u", 2)
    assert store.list_sessions(metadata={HOSTILE: "v"}).session_ids == ["s"]
    info = store.session_info("s")
    assert info is not None and info.expires_at is not None and info.owner == "u"


def test_update_keeps_the_update_time_and_the_expiry(store: CosmosStore) -> None:
    store.append("s", [HumanMessage("q")], ttl=60)
    before = _head(store, "s")
    time.sleep(1.1)  # the head's ttl counts from its last write: it is recomputed
    store.update_session("s", title="renamed")
    head = _head(store, "s")
    assert (head["u"], head["r"], head["x"], head["n"]) == (
        before["u"], before["r"], before["x"], 1)
    assert head["ttl"] < before["ttl"]


def test_update_on_an_expired_session_starts_a_new_one(store: CosmosStore) -> None:
    store.append("s", [HumanMessage("old")], ttl=1)
    store.update_session("s", title="old title")
    time.sleep(1.2)
    store.update_session("s", owner="u")
    info = store.session_info("s")
    assert info is not None
    assert (info.message_count, info.title, info.owner) == (0, None, "u")
    assert store.get_messages("s") == []


def test_stats_are_two_aggregates(store: CosmosStore, monkeypatch: pytest.MonkeyPatch
                                  ) -> None:
    store.append("a", [HumanMessage("1"), AIMessage("2")])
    store.update_session("empty", title="nothing yet")
    store.append("gone", [HumanMessage("x")])
    store.delete_session("gone")
    sent: list[Any] = []
    execute = store._execute

    def spy(request: Any) -> Any:
        sent.append(request)
        return execute(request)

    monkeypatch.setattr(store, "_execute", spy)
    assert store.stats()[:2] == (2, 2)
    assert [type(r).__name__ for r in sent] == ["_Query", "_Query"]
    assert all("SELECT VALUE" in r.sql and r.pk is None for r in sent)


def test_a_layout_1_container_is_upgraded_once(store: CosmosStore) -> None:
    """Heads written before the recent-order key existed are listed after setup."""
    store.append("new", [HumanMessage("x")])
    container = store._sync_container()
    for sid, updated in [("old-a", NOW), ("old-b", NOW + 1)]:
        body = _head_body(partition_key(sid), sid, 1, 0, NOW, updated, None, NOW)
        del body["r"]
        container.create_item(body)
    schema = container.read_item("schema", partition_key=META_PK)
    container.replace_item("schema", {**schema, "v": 1})
    again = open_store(store.url.render(hide_password=False))
    try:
        assert again.list_sessions(order="recent").session_ids == ["new", "old-b", "old-a"]
        assert container.read_item("schema", partition_key=META_PK)["v"] == 2
    finally:
        again.close()
