"""The Conversations API and its extensions, through the official ``openai`` SDK (and
httpx for what the SDK lacks) against a real server on a real port, on memory://,
SQLite and PostgreSQL stores."""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import require_server
from serving import client, serving

from threadline.messages._values import AIMessage, HumanMessage, ToolMessage
from threadline.server import KeyRing, create_app
from threadline.server._items import session_ttl, visible_messages
from threadline.stores import Store, open_store
from threadline.stores._transfer import export_sessions, import_sessions


@dataclass
class Server:
    base: str
    store: Store
    sdk: openai.OpenAI
    http: httpx.Client

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(f"/v1{path}", params=params)

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.http.post(f"/v1{path}", json=body)


@pytest.fixture(scope="module", params=["memory", "sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    if request.param == "postgresql":
        require_server("127.0.0.1", 5432, "PostgreSQL")
        url = f"postgresql://postgres@127.0.0.1:5432/test?table=conv_{secrets.token_hex(5)}"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('conv')}/s.db"
    else:
        url = "memory://"
    store = open_store(url)
    store.setup()
    try:
        with serving(create_app(store, "echo")) as base, \
                httpx.Client(base_url=base, timeout=30) as http:
            yield Server(base, store, client(base), http)
    finally:
        if request.param == "postgresql":
            store.destroy()  # type: ignore[attr-defined]
        store.close()


def run() -> str:
    """A metadata tag that tells this test's conversations from the others'."""
    return secrets.token_hex(6)


def user(text: str, **fields: Any) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text, **fields}


def texts(items: Any) -> list[str]:
    return [item.content[0].text for item in items]


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


# -- OpenAI's routes, through the SDK --------------------------------------------------------

def test_create_retrieve_update_delete(server: Server) -> None:
    sdk = server.sdk
    conv = sdk.conversations.create(items=[user("hi there")], metadata={"topic": "demo"},
                                    extra_body={"title": "Greeting"})
    assert conv.id.startswith("conv_") and conv.object == "conversation"
    assert conv.metadata == {"topic": "demo"}
    assert abs(conv.created_at - time.time()) < 60
    extra = conv.model_extra or {}
    assert extra["title"] == "Greeting" and extra["message_count"] == 1
    assert extra["parent"] is None and extra["expires_at"] is None

    assert sdk.conversations.retrieve(conv.id).metadata == {"topic": "demo"}
    updated = sdk.conversations.update(conv.id, metadata={"topic": "other", "k": "v"})
    assert updated.metadata == {"topic": "other", "k": "v"}
    assert (updated.model_extra or {})["title"] == "Greeting"  # not given: kept
    renamed = sdk.conversations.update(conv.id, metadata=None, extra_body={"title": "New"})
    assert renamed.metadata == {} and (renamed.model_extra or {})["title"] == "New"
    info = server.store.session_info(conv.id)
    assert info is not None and info.title == "New" and info.owner is None

    deleted = sdk.conversations.delete(conv.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (conv.id, "conversation.deleted",
                                                             True)
    assert server.store.session_info(conv.id) is None
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.retrieve(conv.id)
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.delete(conv.id)


def test_items_create_list_retrieve_and_pages(server: Server) -> None:
    sdk = server.sdk
    conv = sdk.conversations.create()
    assert (conv.model_extra or {})["message_count"] == 0
    added = sdk.conversations.items.create(
        conv.id, items=[user(f"m{n}") for n in range(5)])
    assert added.object == "list" and not added.has_more
    assert texts(added.data) == [f"m{n}" for n in range(5)]
    assert added.first_id == added.data[0].id and added.last_id == added.data[-1].id
    ids = [item.id for item in added.data]

    newest = sdk.conversations.items.list(conv.id)
    assert [item.id for item in newest.data] == ids[::-1]  # desc by default
    page = sdk.conversations.items.list(conv.id, limit=2, order="asc")
    assert [item.id for item in page.data] == ids[:2] and page.has_more
    assert page.last_id == ids[1]
    following = page.get_next_page()
    assert [item.id for item in following.data] == ids[2:4] and following.has_more
    # auto-paging walks every page (after=last_id) both ways
    assert [item.id for item in sdk.conversations.items.list(conv.id, limit=2)] == ids[::-1]
    assert [item.id for item in sdk.conversations.items.list(
        conv.id, limit=2, order="asc", after=ids[1])] == ids[2:]
    last = sdk.conversations.items.list(conv.id, limit=5, order="asc")
    assert not last.has_more and len(last.data) == 5

    item = sdk.conversations.items.retrieve(ids[2], conversation_id=conv.id)
    assert item.type == "message" and item.role == "user" and texts([item]) == ["m2"]
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.items.retrieve("msg_nope", conversation_id=conv.id)


def test_deleted_item_is_gone_everywhere(server: Server) -> None:
    sdk = server.sdk
    conv = sdk.conversations.create(items=[user("keep one"), user("drop two"),
                                           user("keep three")])
    ids = [item.id for item in sdk.conversations.items.list(conv.id, order="asc")]
    answer = sdk.conversations.items.delete(ids[1], conversation_id=conv.id)
    assert answer.id == conv.id and answer.object == "conversation"  # OpenAI's answer

    listed = sdk.conversations.items.list(conv.id, order="asc")
    assert texts(listed.data) == ["keep one", "keep three"]
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.items.retrieve(ids[1], conversation_id=conv.id)
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.items.delete(ids[1], conversation_id=conv.id)
    # a page that ended on the item still goes on
    after = sdk.conversations.items.list(conv.id, order="asc", after=ids[1])
    assert texts(after.data) == ["keep three"]
    # the message is still stored (a tombstone hides it)
    assert len(server.store.get_messages(conv.id)) == 3
    # an id that is no valid record key as it is (escaped in the tombstone's key)
    odd = "odd id/é%41"
    sdk.conversations.items.create(conv.id, items=[user("odd", id=odd)])
    assert sdk.conversations.items.retrieve(odd, conversation_id=conv.id).id == odd
    sdk.conversations.items.delete(odd, conversation_id=conv.id)
    assert texts(sdk.conversations.items.list(conv.id, order="asc")) == ["keep one",
                                                                         "keep three"]


def test_tool_items_round_trip_and_partial_delete(server: Server) -> None:
    sdk = server.sdk
    conv = sdk.conversations.create()
    items = sdk.conversations.items.create(conv.id, items=[
        user("weather?"),
        {"type": "function_call", "call_id": "call_1", "name": "weather",
         "arguments": '{"city": "Oslo"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]).data
    assert [item.type for item in items] == ["message", "function_call",
                                             "function_call_output"]
    call = sdk.conversations.items.retrieve(items[1].id, conversation_id=conv.id)
    assert call.type == "function_call" and call.name == "weather"
    assert json.loads(call.arguments) == {"city": "Oslo"} and call.call_id == "call_1"

    sdk.conversations.items.delete(items[1].id, conversation_id=conv.id)
    assert [item.type for item in sdk.conversations.items.list(conv.id, order="asc")] == [
        "message", "function_call_output"]
    lines = server.get(f"/conversations/{conv.id}/export").text.splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["human", "tool"]


def test_visible_messages_drops_only_deleted_items() -> None:
    answer = AIMessage("let me look", id="a1",
                       tool_calls=[{"name": "f", "args": {}, "id": "c1"},
                                   {"name": "g", "args": {}, "id": "c2"}])
    messages = [HumanMessage("q", id="h1"), answer, ToolMessage("r", tool_call_id="c1")]
    assert visible_messages(messages, set()) == messages
    kept = visible_messages(messages, {"h1", "a1_fc0", "msg_at2"})
    assert len(kept) == 1
    assert isinstance(kept[0], AIMessage) and kept[0].content == "let me look"
    assert [call["id"] for call in kept[0].tool_calls] == ["c2"]
    assert visible_messages(messages, {"a1", "a1_fc0", "a1_fc1"}) == [messages[0],
                                                                        messages[2]]


def test_item_ids_cannot_be_reused(server: Server) -> None:
    conv = server.sdk.conversations.create()
    path = f"/conversations/{conv.id}/items"
    twice = error(server.post(path, {"items": [user("a", id="x1"), user("b", id="x1")]}),
                  400)
    assert twice["param"] == "items[1].id"
    assert server.post(path, {"items": [user("a", id="x1")]}).status_code == 200
    # the same item again is a retry: stored once
    assert server.post(path, {"items": [user("a", id="x1")]}).status_code == 200
    assert len(server.store.get_messages(conv.id)) == 1
    other = error(server.post(path, {"items": [user("other", id="x1")]}), 400)
    assert other["param"] == "items[0].id"
    server.sdk.conversations.items.delete("x1", conversation_id=conv.id)
    assert error(server.post(path, {"items": [user("a", id="x1")]}), 400)["param"] \
        == "items[0].id"


def test_terminal_session_is_a_conversation(server: Server) -> None:
    sid = f"terminal-{secrets.token_hex(4)}"
    server.store.append(sid, [HumanMessage("from the terminal"), AIMessage("hello, human")])
    conv = server.sdk.conversations.retrieve(sid)
    assert conv.id == sid and (conv.model_extra or {})["message_count"] == 2
    items = server.sdk.conversations.items.list(sid, order="asc").data
    assert [(item.role, item.content[0].text) for item in items] == [
        ("user", "from the terminal"), ("assistant", "hello, human")]
    assert items[1].content[0].type == "output_text"
    listed = server.get("/conversations", limit=100).json()["data"]
    assert sid in [c["id"] for c in listed]


def test_expires_after(server: Server) -> None:
    conv = server.post("/conversations", {
        "items": [user("short-lived")],
        "expires_after": {"anchor": "last_active_at", "seconds": 3600}}).json()
    assert abs(conv["expires_at"] - (time.time() + 3600)) < 60
    info = server.store.session_info(conv["id"])
    assert info is not None and info.expires_at is not None
    assert asyncio.run(session_ttl(server.store, conv["id"])) == 3600.0
    server.sdk.conversations.items.create(conv["id"], items=[user("later")])
    info = server.store.session_info(conv["id"])
    assert info is not None and info.expires_at is not None  # refreshed, still set

    changed = server.post(f"/conversations/{conv['id']}",
                          {"expires_after": {"anchor": "last_active_at", "seconds": 60}})
    assert abs(changed.json()["expires_at"] - (time.time() + 60)) < 30
    kept = server.post(f"/conversations/{conv['id']}", {"expires_after": None}).json()
    assert kept["expires_at"] is None
    assert asyncio.run(session_ttl(server.store, conv["id"])) is None
    for seconds in (59, 31_536_001):
        bad = server.post("/conversations", {"expires_after": {"seconds": seconds}})
        assert error(bad, 400)["param"] == "expires_after.seconds"


# -- extensions ------------------------------------------------------------------------------

def test_list_recent_first_with_cursor_and_metadata_filter(server: Server) -> None:
    tag = run()
    made = [server.sdk.conversations.create(metadata={"run": tag, "n": str(n)}).id
            for n in range(3)]
    server.store.update_session("_threadline_hidden", metadata={"run": tag})
    first = server.get("/conversations", limit=2, **{"metadata[run]": tag}).json()
    assert first["object"] == "list" and first["has_more"] and first["next_cursor"]
    assert [c["id"] for c in first["data"]] == made[:0:-1]  # newest first
    assert first["first_id"] == made[2] and first["last_id"] == made[1]
    assert first["data"][0]["object"] == "conversation"
    second = server.get("/conversations", limit=2, after=first["next_cursor"],
                        **{"metadata[run]": tag}).json()
    assert [c["id"] for c in second["data"]] == [made[0]]
    assert not second["has_more"] and second["next_cursor"] is None
    both = server.get("/conversations", **{"metadata[run]": tag, "metadata[n]": "1"})
    assert [c["id"] for c in both.json()["data"]] == [made[1]]
    assert error(server.get("/conversations/_threadline_hidden"), 404)["code"] == "not_found"


def test_search_with_snippets(server: Server) -> None:
    word = f"zebra{secrets.token_hex(3)}"
    one = server.sdk.conversations.create(items=[user(f"the {word} runs"),
                                                 user(f"another {word}")]).id
    two = server.sdk.conversations.create(items=[user(f"a {word} again")]).id
    found = server.get("/conversations", q=word).json()
    assert {c["id"] for c in found["data"]} == {one, two}
    assert all(word in c["snippet"] for c in found["data"])
    assert found["next_cursor"] is None
    assert len(server.get("/conversations", q=word, limit=1).json()["data"]) == 1
    # a match in a deleted item is no match
    item = server.sdk.conversations.items.list(two).data[0].id
    server.sdk.conversations.items.delete(item, conversation_id=two)
    assert [c["id"] for c in server.get("/conversations", q=word).json()["data"]] == [one]
    assert error(server.get("/conversations", q="!!"), 400)["param"] == "q"
    assert error(server.get("/conversations", q=word, after="x"), 400)["param"] == "after"


def test_fork(server: Server) -> None:
    sdk = server.sdk
    source = sdk.conversations.create(items=[user("one"), user("two"), user("three")],
                                      metadata={"k": "v"})
    ids = [item.id for item in sdk.conversations.items.list(source.id, order="asc")]
    sdk.conversations.items.delete(ids[0], conversation_id=source.id)
    fork = server.post(f"/conversations/{source.id}/fork",
                       {"item_id": ids[1], "title": "Branch"}).json()
    assert fork["id"].startswith("conv_") and fork["id"] != source.id
    assert (fork["parent"], fork["fork_point"], fork["message_count"]) == (source.id, 2, 2)
    assert fork["title"] == "Branch" and fork["metadata"] == {"k": "v"}
    # the deleted item stays deleted in the fork
    assert texts(sdk.conversations.items.list(fork["id"], order="asc")) == ["two"]
    whole = server.post(f"/conversations/{source.id}/fork").json()
    assert whole["message_count"] == 3
    empty = sdk.conversations.create().id
    assert server.post(f"/conversations/{empty}/fork").json()["message_count"] == 0
    assert error(server.post(f"/conversations/{source.id}/fork", {"item_id": "msg_no"}),
                 404)["param"] == "item_id"
    assert error(server.post(f"/conversations/{source.id}/fork", {"item_id": ids[0]}),
                 404)["param"] == "item_id"


def test_export_is_the_cli_format(server: Server, tmp_path: Path) -> None:
    conv = server.sdk.conversations.create(items=[user("first"), {
        "type": "message", "role": "assistant", "content": "second"}, user("third")])
    response = server.get(f"/conversations/{conv.id}/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    cli = io.StringIO()
    export_sessions(server.store, cli, [conv.id])
    assert response.text == cli.getvalue()
    # it imports back
    copy = open_store("memory://")
    (tmp_path / "export.jsonl").write_text(response.text, encoding="utf-8")
    assert import_sessions(copy, tmp_path / "export.jsonl") == 3
    assert copy.get_messages(conv.id) == server.store.get_messages(conv.id)
    # deleted items are left out
    first = server.sdk.conversations.items.list(conv.id, order="asc").data[0].id
    server.sdk.conversations.items.delete(first, conversation_id=conv.id)
    lines = server.get(f"/conversations/{conv.id}/export").text.splitlines()
    assert [json.loads(line)["data"]["content"] for line in lines] == ["second", "third"]


def test_openapi_documents_the_bodies(server: Server) -> None:
    schema = server.get("/../openapi.json").json()
    bodies = schema["components"]["schemas"]
    assert {"ConversationCreate", "ConversationUpdate", "ItemsCreate", "ForkRequest",
            "ExpiresAfter", "ConversationObject", "ConversationList"} <= set(bodies)
    assert "expires_after" in bodies["ConversationCreate"]["properties"]
    assert "/v1/conversations/{conversation_id}/export" in schema["paths"]


# -- errors ----------------------------------------------------------------------------------

def test_errors_in_openai_shape(server: Server) -> None:
    conv = server.sdk.conversations.create(items=[user("x")]).id
    missing = error(server.get("/conversations/conv_missing"), 404)
    assert missing["param"] == "conversation_id" and missing["code"] == "not_found"
    assert error(server.get("/conversations/a%00b"), 400)["param"] == "conversation_id"
    for metadata in ({str(n): "v" for n in range(17)}, {"k" * 65: "v"}, {"k": "v" * 513}):
        assert error(server.post("/conversations", {"metadata": metadata}), 400)["param"] \
            == "metadata"
        assert error(server.post(f"/conversations/{conv}", {"metadata": metadata}),
                     400)["param"] == "metadata"
    assert error(server.post("/conversations", {"metadata": {"k": 1}}), 400)["param"] \
        .startswith("metadata")
    assert error(server.post("/conversations", {"items": [user("x")] * 21}), 400)["param"] \
        == "items"
    assert error(server.post("/conversations", {"items": [{"type": "mystery"}]}),
                 400)["param"] == "items[0].type"
    assert error(server.post("/conversations", {"color": "red"}), 400)["param"] == "color"
    assert error(server.post(f"/conversations/{conv}/items", {"items": []}), 400)["param"] \
        == "items"
    items = f"/conversations/{conv}/items"
    for limit in (0, 101):
        assert error(server.get(items, limit=limit), 400)["param"] == "limit"
        assert error(server.get("/conversations", limit=limit), 400)["param"] == "limit"
    assert error(server.get(items, order="sideways"), 400)["param"] == "order"
    assert error(server.get(items, after="msg_unknown"), 404)["param"] == "after"
    assert error(server.get("/conversations", after="not-a-cursor"), 400)["param"] \
        == "after"
    assert error(server.get("/conversations", **{"metadata[k]": "v" * 513}), 400)["param"] \
        == "metadata"
    with pytest.raises(openai.BadRequestError) as bad:
        server.sdk.conversations.items.list(conv, limit=0)
    assert bad.value.param == "limit"


def test_users_see_only_their_conversations(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    ring = KeyRing(store)
    alice, bob = ring.create("alice")[1], ring.create("bob")[1]
    store.append("terminal", [HumanMessage("no owner: the local user's")])
    with serving(create_app(store, "echo")) as base:
        as_alice, as_bob = client(base, alice), client(base, bob)
        conv = as_alice.conversations.create(items=[user("alice's secret walrus")])
        mine = as_bob.conversations.create(items=[user("bob's walrus")])
        assert store.session_info(conv.id).owner == "alice"  # type: ignore[union-attr]
        item = as_alice.conversations.items.list(conv.id).data[0].id

        def bob_gets(method: str, path: str, body: Any = None) -> dict[str, Any]:
            response = httpx.request(method, f"{base}/v1{path}", json=body,
                                     headers={"authorization": f"Bearer {bob}"})
            return error(response, 404)

        missing = bob_gets("GET", "/conversations/conv_missing")
        for method, path, body in [
                ("GET", f"/conversations/{conv.id}", None),
                ("POST", f"/conversations/{conv.id}", {"metadata": {}}),
                ("DELETE", f"/conversations/{conv.id}", None),
                ("GET", f"/conversations/{conv.id}/items", None),
                ("POST", f"/conversations/{conv.id}/items", {"items": [user("x")]}),
                ("GET", f"/conversations/{conv.id}/items/{item}", None),
                ("DELETE", f"/conversations/{conv.id}/items/{item}", None),
                ("POST", f"/conversations/{conv.id}/fork", None),
                ("GET", f"/conversations/{conv.id}/export", None),
                ("GET", "/conversations/terminal", None)]:
            got = bob_gets(method, path, body)
            assert got["message"] == missing["message"].replace("conv_missing",
                                                                 path.split("/")[2])
        listed = httpx.get(f"{base}/v1/conversations",
                           headers={"authorization": f"Bearer {bob}"}).json()
        assert [c["id"] for c in listed["data"]] == [mine.id]
        found = httpx.get(f"{base}/v1/conversations", params={"q": "walrus"},
                          headers={"authorization": f"Bearer {bob}"}).json()
        assert [c["id"] for c in found["data"]] == [mine.id]
        fork = httpx.post(f"{base}/v1/conversations/{mine.id}/fork",
                          headers={"authorization": f"Bearer {bob}"}).json()
        assert store.session_info(fork["id"]).owner == "bob"  # type: ignore[union-attr]
        assert as_alice.conversations.retrieve(conv.id).id == conv.id
        assert len(store.get_messages(conv.id)) == 1  # bob's append did not land
    store.close()
