"""The web chat at ``/`` in a real headless Chromium, against a real server on a real port.

One browser for the module, a fresh context (so fresh localStorage) and page per test.
Every page records dialogs, uncaught errors and Content-Security-Policy violations, and a
test fails if any appear: model output must never run code, and the page itself must run
under its own strict CSP.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright
from serving import client, serving

from threadline.models._base import BaseChatModel
from threadline.models._fake import EchoChatModel, FakeListChatModel
from threadline.server import create_app

CHROMIUM = "/usr/bin/chromium"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'")
XSS = "<img src=x onerror=alert(1)> and <script>alert(2)</script>"

expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        reason = f"NO BROWSER: {CHROMIUM} is missing, so the web chat is NOT tested"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Watched:
    """A page and what must not happen on it."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("console", self._console)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.errors.append(f"CSP violation: {message.text}")

    def open(self, url: str) -> Page:
        self.page.goto(url)
        expect(self.page.locator("#app")).to_have_attribute("data-loaded", "true")
        return self.page


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    watched = Watched(context.new_page())
    yield watched
    context.close()
    assert watched.dialogs == [], "a dialog fired"
    assert watched.errors == []


@contextlib.contextmanager
def web(tmp_path: Path, model: BaseChatModel | None = None, **options: Any
        ) -> Iterator[tuple[str, Any]]:
    app = create_app(f"sqlite:///{tmp_path}/w.db", model or EchoChatModel(sleep=0.02),
                     **options)
    with serving(app) as base:
        yield base, app


def send(page: Page, text: str) -> None:
    page.locator("#input").fill(text)
    page.locator("#input").press("Enter")


def answers(page: Page) -> Any:
    return page.locator("#messages .msg.assistant .msg-body")


def questions(page: Page) -> Any:
    return page.locator("#messages .msg.user .msg-body")


def rows(page: Page) -> Any:
    return page.locator("#conversations .conv")


# -- serving -----------------------------------------------------------------------------

def test_page_and_static_files_are_served_with_security_headers(tmp_path: Path) -> None:
    with web(tmp_path) as (base, _):
        page = httpx.get(f"{base}/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["content-security-policy"] == CSP
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        # nothing inline: the CSP would refuse it
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
        assert not re.search(r"\sstyle=|<style|\son\w+=", page.text)
        for name, kind in [("app.js", "text/javascript"), ("markdown.js", "text/javascript"),
                           ("api.js", "text/javascript"), ("app.css", "text/css"),
                           ("favicon.svg", "image/svg+xml")]:
            answer = httpx.get(f"{base}/static/{name}")
            assert answer.status_code == 200, name
            assert answer.headers["content-type"].startswith(kind)
            assert answer.headers["content-security-policy"] == CSP
            # the page never asks the browser to parse markup
            assert not re.search(r"(inner|outer)HTML\s*\+?=|insertAdjacentHTML|document\.write"
                                 r"|DOMParser|createContextualFragment", answer.text)
        for bad in ["nope.js", "..%2F_web.py", "%2E%2E%2F__init__.py", "..%2F..%2Fpyproject.toml"]:
            assert httpx.get(f"{base}/static/{bad}").status_code == 404, bad
        assert httpx.get(f"{base}/static/../_web.py").status_code == 404


# -- the chat ----------------------------------------------------------------------------

def test_answer_streams_then_conversation_is_listed_and_reloads(tmp_path: Path,
                                                                watched: Watched) -> None:
    words = " ".join(f"word{n}" for n in range(30))
    with web(tmp_path, FakeListChatModel([f"Here **it** is: {words}"], sleep=0.04)) as (
            base, _):
        page = watched.open(f"{base}/")
        send(page, "Tell me about threadline storage please")
        # progressively: the answer is on screen while it still streams
        expect(page.locator("#messages .msg.assistant.streaming .msg-body")).to_contain_text(
            "word3")
        expect(page.locator("#stop")).to_be_visible()
        expect(answers(page).last).to_contain_text("word29")
        expect(page.locator("#send")).to_be_visible()
        assert answers(page).last.locator("strong").inner_text() == "it"
        assert page.evaluate("document.activeElement.id") == "input"
        # the first question titles the conversation
        expect(page.locator("#title")).to_have_text("Tell me about threadline storage please")
        expect(rows(page)).to_have_count(1)
        expect(rows(page).first).to_contain_text("Tell me about threadline storage please")

        page.goto(f"{base}/")
        expect(page.locator("#app")).to_have_attribute("data-loaded", "true")
        page.locator("#new-chat").click()
        expect(page.locator("#messages .msg")).to_have_count(0)
        rows(page).first.locator(".conv-open").click()
        expect(questions(page)).to_have_text(
            re.compile("Tell me about threadline storage please"))
        expect(answers(page)).to_contain_text("word29")

        send(page, "and again")   # a second turn goes to the same conversation
        expect(questions(page)).to_have_count(2)
        expect(answers(page)).to_have_count(2)
        expect(rows(page)).to_have_count(1)


def test_search_rename_fork_and_delete(tmp_path: Path, watched: Watched) -> None:
    with web(tmp_path) as (base, _):
        sdk = client(base)
        sdk.conversations.create(items=[{"type": "message", "role": "user",
                                         "content": "pelicans eat fish"}],
                                 extra_body={"title": "Birds"})
        sdk.conversations.create(items=[{"type": "message", "role": "user",
                                         "content": "tomatoes need sun"}],
                                 extra_body={"title": "Garden"})
        page = watched.open(f"{base}/")
        expect(rows(page)).to_have_count(2)
        expect(rows(page).first).to_contain_text("Garden")   # most recent first

        page.locator("#search").fill("pelicans")
        expect(rows(page)).to_have_count(1)
        expect(rows(page).first.locator(".conv-title")).to_have_text("Birds")
        expect(rows(page).first.locator(".conv-snippet")).to_contain_text("pelicans")
        page.locator("#search").fill("")
        expect(rows(page)).to_have_count(2)

        birds = rows(page).filter(has_text="Birds")
        birds.locator(".conv-open").click()
        expect(page.locator("#title")).to_have_text("Birds")
        birds.get_by_role("button", name="Rename conversation Birds").click()
        page.get_by_role("textbox", name="New title").fill("Sea birds")
        page.get_by_role("textbox", name="New title").press("Enter")
        expect(rows(page).filter(has_text="Sea birds")).to_have_count(1)
        expect(page.locator("#title")).to_have_text("Sea birds")
        assert sorted(c["title"] for c in _listed(base)) == ["Garden", "Sea birds"]

        original = page.evaluate("location.hash")
        rows(page).filter(has_text="Sea birds").get_by_role(
            "button", name="Fork conversation Sea birds").click()
        expect(rows(page)).to_have_count(3)
        expect(page).not_to_have_url(re.compile(re.escape(original) + "$"))
        expect(page.locator("#title")).to_have_text("Sea birds")
        expect(questions(page)).to_have_text("pelicans eat fish")
        fork_id = page.evaluate("decodeURIComponent(location.hash.slice(1))")
        assert fork_id != original[1:]
        assert sdk.conversations.retrieve(fork_id).to_dict()["parent"] == original[1:]

        current = page.locator("#conversations .conv.current")
        current.get_by_role("button", name="Delete conversation Sea birds").click()
        page.get_by_role("button", name="Confirm delete").click()
        expect(rows(page)).to_have_count(2)
        expect(page.locator("#title")).to_have_text("New chat")
        assert fork_id not in [c["id"] for c in _listed(base)]


def _listed(base: str) -> list[dict[str, Any]]:
    """The conversations as the API lists them (most recent first)."""
    data: list[dict[str, Any]] = httpx.get(f"{base}/v1/conversations").json()["data"]
    return data


def test_stop_keeps_an_interrupted_answer(tmp_path: Path, watched: Watched) -> None:
    long = " ".join(f"piece{n}" for n in range(200))
    with web(tmp_path, FakeListChatModel([long], sleep=0.2)) as (base, _):
        page = watched.open(f"{base}/")
        send(page, "a long story")
        expect(answers(page).last).to_contain_text("piece2")
        page.keyboard.press("Escape")   # Esc stops, as the Stop button does
        expect(page.locator("#send")).to_be_visible()
        expect(page.locator("#messages .msg.assistant .badge")).to_have_text("interrupted")

        page.reload()
        expect(page.locator("#app")).to_have_attribute("data-loaded", "true")
        expect(questions(page)).to_have_text("a long story")
        stored = page.locator("#messages .msg.assistant")
        expect(stored.locator(".badge")).to_have_text("interrupted")
        expect(stored.locator(".msg-body")).to_contain_text("piece2")
        assert "piece199" not in stored.locator(".msg-body").inner_text()

        conversation = page.evaluate("decodeURIComponent(location.hash.slice(1))")
        items = client(base).conversations.items.list(conversation, order="asc").data
        kept = [item.to_dict() for item in items]
        assert [i["status"] for i in kept if i.get("role") == "assistant"] == ["incomplete"]


def test_model_output_and_stored_text_render_as_text(tmp_path: Path,
                                                     watched: Watched) -> None:
    answer = (f"{XSS}\n\n**bold <img src=x onerror=alert(3)>** and `<b>code</b>`\n\n"
              "[safe](https://example.com/a) [bad](javascript:alert(4)) "
              "[data](data:text/html,<script>alert(5)</script>)\n\n"
              "```html\n<script>alert(6)</script>\n```")
    with web(tmp_path, FakeListChatModel([answer], sleep=0.01)) as (base, _):
        seed: list[Any] = [
            {"type": "message", "role": "user", "content": f"stored {XSS}"},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": f"old answer {XSS}"}]},
            {"type": "function_call", "call_id": "call_1", "name": "lookup",
             "arguments": json.dumps({"q": XSS})},
            {"type": "function_call_output", "call_id": "call_1", "output": f"found {XSS}"},
        ]
        stored = client(base).conversations.create(
            items=seed, extra_body={"title": "<img src=x onerror=alert(7)>"})
        page = watched.open(f"{base}/#{stored.id}")
        messages = page.locator("#messages")
        expect(messages.locator(".msg")).to_have_count(2)
        expect(messages.locator(".msg.user")).to_contain_text(f"stored {XSS}")
        expect(messages.locator(".msg.assistant")).to_contain_text(f"old answer {XSS}")
        # tool calls are shown compactly, their text as text too
        expect(messages.locator("details.tool")).to_have_count(2)
        expect(messages.locator("details.tool summary").first).to_contain_text("lookup(")
        expect(messages.locator("details.tool summary").last).to_contain_text("found <img")
        expect(page.locator("#title")).to_have_text("<img src=x onerror=alert(7)>")

        send(page, "now you")
        expect(answers(page)).to_have_count(2)
        latest = answers(page).last
        expect(latest).to_contain_text("alert(6)")
        expect(page.locator("#send")).to_be_visible()   # the stored items are shown again
        expect(latest).to_contain_text(XSS)
        assert latest.locator("strong").inner_text() == "bold <img src=x onerror=alert(3)>"
        assert latest.locator("code").first.inner_text() == "<b>code</b>"
        assert latest.locator("pre code").inner_text() == "<script>alert(6)</script>"
        links = latest.locator("a")
        expect(links).to_have_count(1)
        assert links.get_attribute("href") == "https://example.com/a"
        assert links.get_attribute("rel") == "noopener noreferrer"
        assert links.get_attribute("target") == "_blank"
        page.wait_for_timeout(300)   # give any handler a chance to fire
        for selector in ["img", "script", "b", "iframe", "[onerror]"]:
            assert page.locator(f"#messages {selector}, #conversations {selector}").count() == 0


LINK = 'rel="noopener noreferrer" target="_blank"'
MARKDOWN = [
    ("# Title\ntext", '<h3 class="md-heading">Title</h3><p>text</p>'),
    ("- a\n- b\n  - c\n\n1. x\n2. y",
     "<ul><li>a</li><li>b<ul><li>c</li></ul></li></ul><ol><li>x</li><li>y</li></ol>"),
    ("3. three\n4. four", '<ol start="3"><li>three</li><li>four</li></ol>'),
    ("```py\nx = '<b>'\n```",
     '<pre data-language="py"><code class="language-py">x = \'&lt;b&gt;\'</code></pre>'),
    ("```\nstill streaming <i>", "<pre><code>still streaming &lt;i&gt;</code></pre>"),
    ("a **b** *c* _d_ ~~e~~ `f` snake_case",
     "<p>a <strong>b</strong> <em>c</em> <em>d</em> <del>e</del> <code>f</code> snake_case</p>"),
    ("> quote\n> more", "<blockquote><p>quote<br>more</p></blockquote>"),
    ("line1\nline2\n\n---", "<p>line1<br>line2</p><hr>"),
    ("[y](http://a.b/c?d=1&e=2) <https://q.r> see https://e.com/x.",
     f'<p><a href="http://a.b/c?d=1&amp;e=2" {LINK}>y</a> <a href="https://q.r/" {LINK}>'
     f'https://q.r</a> see <a href="https://e.com/x" {LINK}>https://e.com/x</a>.</p>'),
    ("[m](mailto:a@b.c)", f'<p><a href="mailto:a@b.c" {LINK}>m</a></p>'),
    # only http(s) and mailto become links; anything else stays text
    ("[x](javascript:alert(1)) [r](/relative) [d](data:text/html,x)",
     "<p>[x](javascript:alert(1)) [r](/relative) [d](data:text/html,x)</p>"),
    ('<a href="javascript:alert(1)">x</a><svg onload=alert(1)>',
     "<p>&lt;a href=\"javascript:alert(1)\"&gt;x&lt;/a&gt;&lt;svg onload=alert(1)&gt;</p>"),
]


def test_markdown_renderer(tmp_path: Path, watched: Watched) -> None:
    with web(tmp_path) as (base, _):
        page = watched.open(f"{base}/")
        rendered = page.evaluate("""async (sources) => {
            const { renderMarkdown } = await import("/static/markdown.js");
            return sources.map((source) => {
                const box = document.createElement("div");
                box.appendChild(renderMarkdown(source));
                return box.innerHTML;
            });
        }""", [source for source, _ in MARKDOWN])
    assert list(zip([source for source, _ in MARKDOWN], rendered, strict=True)) == MARKDOWN


def test_api_errors_show_in_a_dismissible_banner(tmp_path: Path, watched: Watched) -> None:
    with web(tmp_path, FakeListChatModel(["never"], error_on_chunk_number=0)) as (base, _):
        page = watched.open(f"{base}/#conv_doesnotexist")
        expect(page.locator("#banner")).to_be_visible()
        expect(page.locator("#banner-text")).to_contain_text("conv_doesnotexist")
        page.get_by_role("button", name="Dismiss error").click()
        expect(page.locator("#banner")).to_be_hidden()

        send(page, "fail please")
        expect(page.locator("#banner-text")).to_contain_text("failed at chunk 0")
        expect(page.locator("#send")).to_be_visible()


def test_key_prompt_on_a_server_with_keys(tmp_path: Path, watched: Watched) -> None:
    with web(tmp_path, require_keys=True) as (base, app):
        _, key = app.state.threadline.keys.create("alice")
        page = watched.open(f"{base}/")
        expect(page.locator("#key-overlay")).to_be_visible()
        expect(page.locator("#key-input")).to_be_focused()

        page.locator("#key-input").fill("wrong-key")
        page.locator("#key-input").press("Enter")
        expect(page.locator("#key-message")).to_contain_text("refused")

        page.locator("#key-input").fill(key)
        page.get_by_role("button", name="Use this API key").click()
        expect(page.locator("#key-overlay")).to_be_hidden()
        send(page, "hello with a key")
        expect(answers(page)).to_have_text("hello with a key")
        expect(rows(page)).to_have_count(1)
        mine = httpx.get(f"{base}/v1/conversations",
                         headers={"Authorization": f"Bearer {key}"}).json()["data"]
        assert [c["title"] for c in mine] == ["hello with a key"]

        page.reload()   # the key is remembered
        expect(page.locator("#app")).to_have_attribute("data-loaded", "true")
        expect(rows(page)).to_have_count(1)
        expect(page.locator("#key-overlay")).to_be_hidden()

        page.get_by_role("button", name="Forget API key").click()
        expect(page.locator("#key-overlay")).to_be_visible()
        assert page.evaluate("localStorage.getItem('threadline.apiKey')") is None


def test_phone_viewport(tmp_path: Path, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    try:
        watched = Watched(context.new_page())
        with web(tmp_path) as (base, _):
            page = watched.open(f"{base}/")
            expect(page.locator("#sidebar")).not_to_be_in_viewport()
            expect(page.locator("#open-sidebar")).to_be_visible()
            send(page, "small screen")
            expect(answers(page)).to_have_text("small screen")
            for selector in ["#input", "#send", "#model", "#open-sidebar"]:
                box = page.locator(selector).bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
                assert box["y"] + box["height"] <= 844
            assert page.evaluate("document.documentElement.scrollWidth") <= 390

            page.get_by_role("button", name="Show conversations").click()
            expect(page.locator("#sidebar")).to_be_in_viewport()
            page.get_by_role("button", name="New chat").click()
            expect(page.locator("#sidebar")).not_to_be_in_viewport()
            expect(page.locator("#messages .msg")).to_have_count(0)
            page.get_by_role("button", name="Show conversations").click()
            rows(page).first.locator(".conv-open").click()
            expect(page.locator("#sidebar")).not_to_be_in_viewport()
            expect(answers(page)).to_have_text("small screen")
        assert watched.dialogs == [] and watched.errors == []
    finally:
        context.close()
