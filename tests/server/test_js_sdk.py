"""OpenAI's JavaScript SDK (the npm package ``openai``, installed by ``npm ci``) against a
real ``threadline serve`` app: a conversation started in the terminal (written through
the store, as ``threadline chat`` does) continues from a TypeScript app, streamed, and
its items page with the SDK's own auto-pagination."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from serving import serving

from threadline import AIMessage, HumanMessage
from threadline.server import create_app
from threadline.stores import open_store

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("js_client.mjs")


def test_the_javascript_sdk_continues_a_terminal_conversation(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "openai").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("Node.js or the npm package openai is missing (run `npm ci`)")
        pytest.skip("Node.js or the npm package openai is missing (run `npm ci`)")
    store = open_store(f"sqlite:///{tmp_path}/js.db")
    store.setup()
    store.append("from-terminal", [HumanMessage("hi from the terminal", id="m1"),
                                   AIMessage("hi terminal", id="m2")])
    with serving(create_app(store, "echo")) as base:
        done = subprocess.run([node, str(SCRIPT), base, "from-terminal"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["created"].startswith("conv_") and seen["metadata"] == {"from": "js"}
    assert seen["answer"] == "and now from TypeScript"
    assert seen["streamed"] == "streamed words please"
    assert seen["types"][0] == "response.created" and seen["types"][-1] == "response.completed"
    assert seen["items"] == ["hi from the terminal", "hi terminal", "and now from TypeScript",
                             "and now from TypeScript", "streamed words please",
                             "streamed words please"]
    assert seen["missing"]["status"] == 404
    texts = [m.text for m in store.get_messages("from-terminal")]
    assert texts[-2:] == ["streamed words please", "streamed words please"]
    store.close()
