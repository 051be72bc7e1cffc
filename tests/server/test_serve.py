"""``threadline serve`` and ``threadline keys``, as users run them.

The keys commands run through :func:`threadline.cli._main.main` (exit codes and output as
a shell sees them); every key they print is then tried with the official ``openai`` SDK
against a real server. ``serve`` runs as its own process (``serve_process``): bound to
all addresses, with several workers on one SQLite file, and two servers on one
PostgreSQL store continuing one conversation, as a deployment behind a load balancer
does. Stopping it (Ctrl-C, SIGTERM) must be a clean exit.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import require_server
from serving import client, free_port, serving

from threadline.cli._main import main
from threadline.server import create_app
from threadline.stores import open_store

KEY = re.compile(r"tl-([0-9a-f]{12})-[A-Za-z0-9_\-]{43}")


@pytest.fixture
def url(home: Path) -> str:
    return f"sqlite:///{home / 'serve.db'}"


def _create_key(url: str, user: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["keys", "create", user, "--store", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert KEY.fullmatch(lines[-1]), lines
    return lines[-1]


def _key_id(key: str) -> str:
    match = KEY.fullmatch(key)
    assert match is not None, key
    return match.group(1)


def _messages(page: Iterable[Any]) -> list[tuple[str, str]]:
    """(role, text) of each message item of a page of conversation items."""
    return [(item.role, "".join(part.text for part in item.content))
            for item in page if item.type == "message"]


# -- threadline keys ----------------------------------------------------------------------


def test_keys_create_list_revoke(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "list", "--store", url]) == 0
    assert "no keys" in capsys.readouterr().out

    assert main(["keys", "create", "alice", "--store", url]) == 0
    out = capsys.readouterr().out.splitlines()
    key = KEY.fullmatch(out[-1])
    assert key is not None and len(out) >= 2  # the info line, then the key alone
    key_id = key.group(1)
    assert key_id in out[0] and "alice" in out[0] and key.group(0) not in out[0]
    bob_key = _create_key(url, "bob", capsys)

    assert main(["keys", "list", "--store", url]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing and "alice" in listing and "bob" in listing
    # Neither a key nor its stored digest is ever shown.
    assert "tl-" not in listing and not re.search(r"[0-9a-f]{64}", listing)
    assert main(["keys", "list", "--user", "bob", "--store", url]) == 0
    only_bob = capsys.readouterr().out
    assert "bob" in only_bob and "alice" not in only_bob and key_id not in only_bob

    assert main(["keys", "revoke", key_id, "--store", url]) == 0
    out = capsys.readouterr().out
    assert key_id in out and "last key" not in out  # bob's is left
    assert main(["keys", "list", "--store", url]) == 0
    assert key_id not in capsys.readouterr().out

    # Unknown: exit 1 and one line naming it.
    assert main(["keys", "revoke", key_id, "--store", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("threadline: error: no key with id") and key_id in err

    # Revoking by the whole key works, and the key is not echoed back.
    assert main(["keys", "revoke", bob_key, "--store", url]) == 0
    out = capsys.readouterr().out
    assert bob_key not in out and _key_id(bob_key) in out
    assert "last key" in out
    assert main(["keys", "revoke", bob_key, "--store", url]) == 1
    assert bob_key not in capsys.readouterr().err


def test_keys_refuses_a_bad_user_name(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "no spaces", "--store", url]) == 1
    assert "user name" in capsys.readouterr().err
    assert main(["keys", "revoke", "not-a-key-id", "--store", url]) == 1
    assert "key id" in capsys.readouterr().err


def test_printed_key_works_and_revoked_key_stops(url: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    key = _create_key(url, "alice", capsys)
    other = _create_key(url, "bob", capsys)
    with serving(create_app(url, "echo")) as base:
        conversation = client(base, key).conversations.create(metadata={"k": "v"})
        assert client(base, key).conversations.retrieve(conversation.id).metadata == {"k": "v"}
        wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
        with pytest.raises(openai.AuthenticationError):
            client(base, wrong).conversations.create()
        with pytest.raises(openai.AuthenticationError):
            client(base, "local").conversations.create()

    key_id = _key_id(key)
    assert main(["keys", "revoke", key_id, "--store", url]) == 0
    # A new server process (no cached verification) refuses the revoked key; bob's key
    # still works, and does not see alice's conversation.
    with serving(create_app(url, "echo")) as base:
        with pytest.raises(openai.AuthenticationError):
            client(base, key).conversations.retrieve(conversation.id)
        with pytest.raises(openai.NotFoundError):
            client(base, other).conversations.retrieve(conversation.id)
        assert client(base, other).conversations.create().id.startswith("conv_")


# -- threadline serve ---------------------------------------------------------------------


def test_serve_refuses_a_public_address_without_keys(
        url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--host", "0.0.0.0", "--store", url, "--model", "echo",
                 "--port", str(free_port())])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("threadline: error: no API keys")
    assert "threadline keys create USER" in err and "127.0.0.1" in err
    assert len(err.strip().splitlines()) == 1  # one line, no traceback, nothing started


def test_serve_usage_errors(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--store", "memory://", "--model", "echo", "--workers", "2"]) == 2
    assert "memory" in capsys.readouterr().err
    assert main(["serve", "--store", url, "--model", "echo", "--model", "echo"]) == 2
    assert "twice" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # argparse's own usage error
        main(["serve", "--store", url, "--workers", "0"])
    assert exited.value.code == 2 and "--workers" in capsys.readouterr().err
    assert main(["serve", "--store", url, "--model", "no-such-model"]) == 1
    assert "unknown model name" in capsys.readouterr().err


@contextlib.contextmanager
def _servers(*commands: list[str]) -> Iterator[list[tuple[str, subprocess.Popen[str]]]]:
    """``threadline serve ARGS`` for each of ``commands``, started together, as processes
    whose exit code and output the test reads (it stops them itself: :func:`_stop`)."""
    started: list[tuple[str, subprocess.Popen[str]]] = []
    try:
        for args in commands:
            port = free_port()
            started.append((f"http://127.0.0.1:{port}", subprocess.Popen(
                [sys.executable, "-m", "threadline", "serve", *args, "--port", str(port)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
        deadline = time.monotonic() + 30
        for base, process in started:
            while True:
                assert process.poll() is None, process.communicate()
                try:
                    httpx.get(f"{base}/v1/health", timeout=1.0)
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline, "threadline serve did not answer"
                    time.sleep(0.1)
        yield started
    finally:
        for _, process in started:
            if process.poll() is None:
                process.kill()
                process.communicate()


@contextlib.contextmanager
def _serve_watched(args: list[str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with _servers(args) as [server]:
        yield server


def _stop(process: subprocess.Popen[str], how: signal.Signals) -> str:
    """Stop the server as Ctrl-C or a service manager does; it must exit 0 and print
    nothing on stdout and no error. Its stderr."""
    process.send_signal(how)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert out == ""
    assert "Traceback" not in err and "error" not in err.lower(), err
    return err


def test_serve_on_all_addresses_with_a_key(url: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    key = _create_key(url, "alice", capsys)
    with _serve_watched(["--host", "0.0.0.0", "--store", url, "--model", "echo"]) as (
            base, process):
        sdk = client(base, key)
        conversation = sdk.conversations.create()
        answer = sdk.responses.create(model="echo", input="over the network",
                                      conversation=conversation.id)
        assert answer.output_text == "over the network"
        with pytest.raises(openai.AuthenticationError):
            client(base, "local").conversations.retrieve(conversation.id)
        missing = httpx.get(f"{base}/v1/conversations/{conversation.id}")
        assert missing.status_code == 401
        assert set(missing.json()["error"]) == {"message", "type", "param", "code"}
        err = _stop(process, signal.SIGINT)  # Ctrl-C
    port = base.rsplit(":", 1)[1]
    assert err.splitlines()[0] == (f"threadline serve · http://0.0.0.0:{port} · store {url} "
                                   "· model echo · API keys required (1 in the store)")


def test_a_server_started_with_keys_keeps_requiring_one(
        url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Revoking the last key must not turn a running server into the key-less local
    user's (behind a reverse proxy every caller looks local)."""
    from threadline.server._keys import CACHE_SECONDS

    key = _create_key(url, "alice", capsys)
    with _serve_watched(["--store", url, "--model", "echo"]) as (base, process):
        assert client(base, key).conversations.create().id.startswith("conv_")
        assert main(["keys", "revoke", key, "--store", url]) == 0
        assert "refuse every call" in capsys.readouterr().out
        time.sleep(CACHE_SECONDS + 0.5)  # past every cached answer about the keys
        for token in ("", key, "local"):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            assert httpx.get(f"{base}/v1/conversations", headers=headers).status_code == 401
        _stop(process, signal.SIGTERM)


def test_serve_workers_share_one_sqlite_store(url: str) -> None:
    with _serve_watched(["--store", url, "--model", "echo", "--model", "fake",
                         "--workers", "2"]) as (base, process):
        sdk = client(base)

        def turn(number: int) -> tuple[str, str]:
            conversation = sdk.conversations.create(metadata={"n": str(number)})
            answer = sdk.responses.create(model="echo", input=f"turn {number}",
                                          conversation=conversation.id)
            return conversation.id, answer.output_text

        with ThreadPoolExecutor(4) as pool:
            done = list(pool.map(turn, range(8)))
        for number, (conversation_id, text) in enumerate(done):
            assert text == f"turn {number}"
            # Whichever worker answers reads what another one wrote.
            items = sdk.conversations.items.list(conversation_id, order="asc")
            assert _messages(items) == [("user", f"turn {number}"),
                                        ("assistant", f"turn {number}")]
        err = _stop(process, signal.SIGTERM)  # a service manager's stop
    assert err.splitlines()[0] == (f"threadline serve · {base} · store {url} · models echo, "
                                   "fake · no API keys: this machine only")
    with open_store(url) as store:
        assert sum(1 for sid in store.iter_sessions() if sid.startswith("conv_")) == 8


def test_serve_picks_the_store_and_model_like_chat(home: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """No flags: THREADLINE_STORE / THREADLINE_MODEL (the settings `chat` uses)."""
    env_url = f"sqlite:///{home / 'from-env.db'}"
    monkeypatch.setenv("THREADLINE_STORE", env_url)
    monkeypatch.setenv("THREADLINE_MODEL", "echo")
    with _serve_watched([]) as (base, process):
        sdk = client(base)
        conversation = sdk.conversations.create()
        assert sdk.responses.create(input="env", conversation=conversation.id
                                    ).output_text == "env"
        err = _stop(process, signal.SIGTERM)
    assert f"store {env_url} · model echo · " in err.splitlines()[0]
    with open_store(env_url) as store:
        assert store.session_info(conversation.id) is not None


def test_two_servers_on_one_postgres_store_continue_one_conversation(home: Path) -> None:
    require_server("127.0.0.1", 5432, "PostgreSQL")
    table = f"t_{secrets.token_hex(5)}"
    # trust authentication ignores the password: it is here to be redacted in the banner.
    url = f"postgresql://postgres:s3cret-pw@127.0.0.1:5432/test?table={table}"
    try:
        with _servers(["--store", url, "--model", "echo"],
                      ["--store", url, "--model", "echo"]) as [
                (first, one), (second, two)]:
            a, b = client(first), client(second)
            conversation = a.conversations.create(metadata={"where": "pg"})
            assert a.responses.create(model="echo", input="asked on one",
                                      conversation=conversation.id).output_text == \
                "asked on one"
            assert b.responses.create(model="echo", input="asked on two",
                                      conversation=conversation.id).output_text == \
                "asked on two"
            expected = [("user", "asked on one"), ("assistant", "asked on one"),
                        ("user", "asked on two"), ("assistant", "asked on two")]
            assert _messages(a.conversations.items.list(conversation.id, order="asc")) \
                == expected
            assert _messages(b.conversations.items.list(conversation.id, order="asc")) \
                == expected
            assert b.conversations.retrieve(conversation.id).metadata == {"where": "pg"}
            for process in (one, two):
                err = _stop(process, signal.SIGTERM)
                assert "s3cret-pw" not in err
                assert "store postgresql://postgres:***@127.0.0.1" in err.splitlines()[0]
    finally:
        with open_store(url) as store:
            store.destroy()


def test_the_worker_factory_reads_the_settings_from_the_environment(url: str) -> None:
    from threadline._errors import InputError
    from threadline.server import _factory

    app = _factory.app(_factory.environment(url, ["echo", "fake"], system="be brief",
                                            require_keys=True))
    state = app.state.threadline
    assert list(state.models) == ["echo", "fake"] and state.default_model == "echo"
    assert state.system == "be brief" and state.require_keys is True
    assert state.store.url.render() == url
    state.store.close()
    plain = _factory.app(_factory.environment(url, ["echo"]))
    assert plain.state.threadline.system is None
    assert plain.state.threadline.require_keys is False
    plain.state.threadline.store.close()
    with pytest.raises(InputError, match=_factory.STORE_ENV):
        _factory.app({})
    for models in ["", "[]", '"echo"', "[1]", "not json"]:
        with pytest.raises(InputError, match=_factory.MODELS_ENV):
            _factory.app({_factory.STORE_ENV: url, _factory.MODELS_ENV: models})
    with pytest.raises(InputError, match=_factory.REQUIRE_KEYS_ENV):
        _factory.app({**_factory.environment(url, ["echo"]),
                      _factory.REQUIRE_KEYS_ENV: "yes"})
