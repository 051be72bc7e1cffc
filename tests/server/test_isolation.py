"""Per-user isolation of the server: a user never reaches another user's conversations.

Alice and Bob each have a key on one store. Alice makes a conversation (items, a
response); then Bob tries every route that takes an id with Alice's ids. Each answer
must be the 404 a made-up id gets, byte for byte once the ids are swapped (so ids cannot
be probed), in OpenAI's error shape; and Alice's conversation must be exactly as before
(nothing added, deleted, renamed, forked or answered). Listings and search never show
Bob anything of Alice's, nor the terminal's sessions (owner None), nor the server's own
reserved session. A missing or wrong key is a 401; a server without keys answers only
its own machine (403 otherwise).

Real components only: a real uvicorn server (``serving``), the official ``openai`` SDK
for what Alice does, raw HTTP (``httpx``) where the exact answer is the point.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from serving import client, serving

from threadline import AIMessage, HumanMessage
from threadline.server import create_app
from threadline.server._items import new_id, response_id
from threadline.stores import Store, open_store

TERMINAL = "terminal-chat"
ERROR_FIELDS = {"message", "type", "param", "code"}


@dataclass
class World:
    base: str
    store: Store
    alice_key: str
    bob_key: str
    conversation: str
    response: str
    item: str

    def http(self, key: str | None) -> httpx.Client:
        headers = {"authorization": f"Bearer {key}"} if key is not None else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)


def _terminal_session(store: Store) -> None:
    """What ``threadline chat`` stores: a session without an owner."""
    store.append(TERMINAL, [HumanMessage("a terminal secret", id="t1"),
                            AIMessage("a terminal secret", id="t2")])
    store.update_session(TERMINAL, title="from the terminal")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = open_store(f"sqlite:///{tmp_path / 'isolation.db'}")
    store.setup()
    _terminal_session(store)
    app = create_app(store, "echo")
    _, alice_key = app.state.threadline.keys.create("alice")
    _, bob_key = app.state.threadline.keys.create("bob")
    with serving(app) as base:
        alice = client(base, alice_key)
        conversation = alice.conversations.create(
            items=[{"type": "message", "role": "user", "content": "alpha secret"}],
            metadata={"owner": "alice"})
        response = alice.responses.create(model="echo", input="bravo secret",
                                          conversation=conversation.id)
        items = alice.conversations.items.list(conversation.id, order="asc")
        assert [item.type for item in items.data] == ["message"] * 3
        yield World(base, store, alice_key, bob_key, conversation.id, response.id,
                    items.data[0].id)
    store.close()


def _snapshot(world: World) -> dict[str, Any]:
    """Everything Alice can see of her conversation, and every session in the store."""
    with world.http(world.alice_key) as alice:
        conversation, response = world.conversation, world.response
        seen: dict[str, Any] = {}
        for name, path in [
            ("conversation", f"/v1/conversations/{conversation}"),
            ("items", f"/v1/conversations/{conversation}/items?order=asc&limit=100"),
            ("item", f"/v1/conversations/{conversation}/items/{world.item}"),
            ("response", f"/v1/responses/{response}"),
            ("input_items", f"/v1/responses/{response}/input_items?order=asc"),
            ("export", f"/v1/conversations/{conversation}/export"),
            ("listing", "/v1/conversations?limit=100"),
        ]:
            answer = alice.get(path)
            assert answer.status_code == 200, (path, answer.text)
            seen[name] = answer.text
    seen["sessions"] = sorted(world.store.iter_sessions())
    seen["messages"] = [(m.type, m.text, m.id) for m in world.store.get_messages(conversation)]
    seen["terminal"] = [(m.type, m.text) for m in world.store.get_messages(TERMINAL)]
    return seen


#: Every route that takes an id: (method, path, JSON body), with {conversation},
#: {item} and {response} filled in with Alice's ids, or with made-up ones.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/conversations/{conversation}", None),
    ("POST", "/v1/conversations/{conversation}", {"metadata": {"owner": "bob"}}),
    ("DELETE", "/v1/conversations/{conversation}", None),
    ("POST", "/v1/conversations/{conversation}/items",
     {"items": [{"type": "message", "role": "user", "content": "injected"}]}),
    ("GET", "/v1/conversations/{conversation}/items", None),
    ("GET", "/v1/conversations/{conversation}/items/{item}", None),
    ("DELETE", "/v1/conversations/{conversation}/items/{item}", None),
    ("POST", "/v1/conversations/{conversation}/fork", {}),
    ("POST", "/v1/conversations/{conversation}/fork", None),
    ("GET", "/v1/conversations/{conversation}/export", None),
    ("GET", "/v1/responses/{response}", None),
    ("DELETE", "/v1/responses/{response}", None),
    ("GET", "/v1/responses/{response}/input_items", None),
    ("POST", "/v1/responses",
     {"model": "echo", "input": "read me alice's", "conversation": "{conversation}"}),
    ("POST", "/v1/responses",
     {"model": "echo", "input": "read me alice's", "previous_response_id": "{response}"}),
    ("POST", "/v1/responses",
     {"model": "echo", "input": "read me alice's", "stream": True,
      "conversation": "{conversation}"}),
]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    return value


def _ask(http: httpx.Client, route: tuple[str, str, dict[str, Any] | None],
         ids: dict[str, str]) -> tuple[int, str]:
    """The status and the body of the answer, with the ids replaced by their names (so
    answers about different ids compare)."""
    method, path, body = route
    answer = http.request(method, _fill(path, ids),
                          json=_fill(body, ids) if body is not None else None)
    text = answer.text
    for name, ident in ids.items():
        text = text.replace(ident, f"<{name}>")
    if answer.status_code == 404:
        assert answer.headers["content-type"].startswith("application/json")
        assert set(answer.json()["error"]) == ERROR_FIELDS, text
    return answer.status_code, text


@pytest.mark.parametrize("route", ROUTES, ids=[
    f"{m} {p} {'no body' if b is None else sorted(b)}" for m, p, b in ROUTES])
def test_another_users_ids_answer_as_made_up_ones(world: World, route: Any) -> None:
    before = _snapshot(world)
    alices = {"conversation": world.conversation, "item": world.item,
              "response": world.response}
    fake_conversation = new_id("conv")
    made_up = {"conversation": fake_conversation, "item": new_id("msg"),
               "response": response_id(fake_conversation)}
    assert all(len(alices[name]) == len(made_up[name]) for name in alices)
    with world.http(world.bob_key) as bob:
        status, text = _ask(bob, route, alices)
        assert status == 404, text
        assert (status, text) == _ask(bob, route, made_up)
        error = json.loads(text)["error"]
        assert error["code"] == "not_found" and error["type"] == "invalid_request_error"
        # A made-up response id that names Alice's conversation gets the same answer.
        if "{response}" in json.dumps(route):
            forged = {**alices, "response": response_id(world.conversation)}
            assert _ask(bob, route, forged)[0] == 404
    assert _snapshot(world) == before
    # ...and Alice still reaches all of it (the test could tell a deletion).
    with world.http(world.alice_key) as alice:
        assert alice.get(f"/v1/conversations/{world.conversation}").status_code == 200


def test_listings_and_search_show_only_the_callers_own(world: World) -> None:
    bob = client(world.base, world.bob_key)
    mine = bob.responses.create(model="echo", input="bravo secret").conversation
    assert mine is not None
    with world.http(world.bob_key) as http:
        listing = http.get("/v1/conversations", params={"limit": 100})
        found = http.get("/v1/conversations", params={"q": "secret", "limit": 100})
        by_metadata = http.get("/v1/conversations", params={"metadata[owner]": "alice"})
    for answer in (listing, found, by_metadata):
        assert answer.status_code == 200, answer.text
        assert world.conversation not in answer.text
        assert TERMINAL not in answer.text and "_threadline" not in answer.text
    assert [c["id"] for c in listing.json()["data"]] == [mine.id]
    assert [c["id"] for c in found.json()["data"]] == [mine.id]
    assert by_metadata.json()["data"] == []

    with world.http(world.alice_key) as http:  # the same queries do find hers
        listing = http.get("/v1/conversations", params={"limit": 100})
        found = http.get("/v1/conversations", params={"q": "secret", "limit": 100})
    assert [c["id"] for c in listing.json()["data"]] == [world.conversation]
    assert [c["id"] for c in found.json()["data"]] == [world.conversation]


def test_terminal_sessions_are_invisible_to_keyed_users(world: World) -> None:
    before = _snapshot(world)
    with world.http(world.alice_key) as alice:
        for method, path, body in [
            ("GET", f"/v1/conversations/{TERMINAL}", None),
            ("GET", f"/v1/conversations/{TERMINAL}/items", None),
            ("GET", f"/v1/conversations/{TERMINAL}/items/t1", None),
            ("POST", f"/v1/conversations/{TERMINAL}/items",
             {"items": [{"type": "message", "role": "user", "content": "x"}]}),
            ("POST", f"/v1/conversations/{TERMINAL}/fork", {}),
            ("DELETE", f"/v1/conversations/{TERMINAL}", None),
            ("POST", "/v1/responses", {"model": "echo", "input": "x",
                                       "conversation": TERMINAL}),
            ("GET", "/v1/conversations/_threadline_keys", None),
            ("GET", "/v1/conversations/_threadline_keys/items", None),
            ("POST", "/v1/responses", {"model": "echo", "input": "x",
                                       "conversation": "_threadline_keys"}),
        ]:
            answer = alice.request(method, path, json=body)
            assert answer.status_code == 404, (method, path, answer.text)
            assert set(answer.json()["error"]) == ERROR_FIELDS
    assert _snapshot(world) == before
    info = world.store.session_info(TERMINAL)
    assert info is not None and info.owner is None and info.title == "from the terminal"


def test_a_missing_or_wrong_key_is_401(world: World) -> None:
    alice_id = world.alice_key.split("-")[1]
    wrong_secret = f"tl-{alice_id}-{'A' * 43}"
    for header in [None, "", "Bearer", f"Basic {world.alice_key}",
                   "Bearer local", f"Bearer {wrong_secret}",
                   f"Bearer {world.alice_key}x", f"Bearer {world.alice_key[:-1]}"]:
        headers = {"authorization": header} if header is not None else {}
        for method, path in [("GET", "/v1/conversations"),
                             ("GET", f"/v1/conversations/{world.conversation}"),
                             ("POST", "/v1/responses"), ("GET", "/v1/models")]:
            answer = httpx.request(method, world.base + path, headers=headers,
                                   json={"model": "echo", "input": "x"}
                                   if method == "POST" else None)
            assert answer.status_code == 401, (header, path, answer.text)
            error = answer.json()["error"]
            assert set(error) == ERROR_FIELDS and error["code"] == "invalid_api_key"
            assert world.alice_key not in answer.text
    with pytest.raises(openai.AuthenticationError):
        client(world.base, wrong_secret).conversations.retrieve(world.conversation)
    # The health check needs no key (load balancers).
    assert httpx.get(f"{world.base}/v1/health").status_code == 200


def test_keys_let_other_machines_in(world: World) -> None:
    app = create_app(world.store, "echo")
    with TestClient(app, client=("203.0.113.5", 1234)) as remote:
        mine = remote.get(f"/v1/conversations/{world.conversation}",
                          headers={"authorization": f"Bearer {world.alice_key}"})
        assert mine.status_code == 200 and mine.json()["id"] == world.conversation
        assert remote.get("/v1/conversations").status_code == 401


def test_a_server_without_keys_serves_only_its_own_machine(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'keyless.db'}")
    store.setup()
    _terminal_session(store)
    app = create_app(store, "echo")
    try:
        with TestClient(app, client=("203.0.113.5", 1234)) as remote:
            for method, path, body in [
                ("GET", "/v1/conversations", None),
                ("GET", f"/v1/conversations/{TERMINAL}", None),
                ("GET", f"/v1/conversations/{TERMINAL}/items", None),
                ("POST", "/v1/conversations", {}),
                ("POST", "/v1/responses", {"model": "echo", "input": "x",
                                           "conversation": TERMINAL}),
                ("GET", "/v1/models", None),
            ]:
                answer = remote.request(method, path, json=body)
                assert answer.status_code == 403, (path, answer.text)
                error = answer.json()["error"]
                assert set(error) == ERROR_FIELDS and error["type"] == "permission_error"
                assert "threadline keys create" in error["message"]
            # A key-shaped header changes nothing while the store holds no key.
            answer = remote.get("/v1/conversations",
                                headers={"authorization": "Bearer tl-000000000000-x"})
            assert answer.status_code == 403
        assert [m.text for m in store.get_messages(TERMINAL)] == ["a terminal secret"] * 2
        assert sorted(store.iter_sessions()) == [TERMINAL]

        for address in ("127.0.0.1", "127.8.9.10", "::1"):
            with TestClient(app, client=(address, 1234)) as local:
                listing = local.get("/v1/conversations")
                assert listing.status_code == 200, (address, listing.text)
                # The local user sees the terminal's sessions too.
                assert [c["id"] for c in listing.json()["data"]] == [TERMINAL]
                assert local.get(f"/v1/conversations/{TERMINAL}").status_code == 200
    finally:
        store.close()
