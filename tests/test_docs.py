"""The examples in README.md and docs/*.md run, and print what the docs say they print.

Every ```python block of a file runs in order in one fresh namespace, with a temporary
working directory (so files such as our_conversation.txt land there). Conventions:

- a line ``<!-- no-test -->`` right before a block skips it (e.g. code needing a server
  or an API key);
- an ```output block right after a python block (blank lines between are fine) must
  equal what that python block printed.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

_FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)[^\n]*$")
SKIP_MARK = "<!-- no-test -->"


class Block(NamedTuple):
    language: str
    code: str
    line: int  # 1-based line of the opening fence
    skipped: bool
    output: str | None  # the ```output block that follows, if any


def parse_blocks(text: str) -> list[Block]:
    """The fenced blocks of a markdown text, each python one with its expected output."""
    lines = text.splitlines()
    raw: list[tuple[str, str, int, bool, int]] = []  # language, code, line, skipped, end
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i].strip())
        if not match:
            i += 1
            continue
        fence, language = match.group(1), match.group(2).lower()
        start = i
        previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()),
                        "")
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        indent = len(lines[start]) - len(lines[start].lstrip())
        code = "\n".join(line[indent:] if line[:indent].isspace() else line for line in body)
        raw.append((language, code + "\n", start + 1, previous == SKIP_MARK, i))
        i += 1
    blocks: list[Block] = []
    for index, (language, code, line, skipped, end) in enumerate(raw):
        output = None
        if index + 1 < len(raw) and raw[index + 1][0] == "output":
            between = lines[end + 1:raw[index + 1][2] - 1]
            if not any(s.strip() for s in between):
                output = raw[index + 1][1]
        blocks.append(Block(language, code, line, skipped, output))
    return blocks


def test_parse_blocks() -> None:
    text = (
        "intro\n```python\nx = 1\n```\n\n```output\n1\n```\n"
        "<!-- no-test -->\n```python\nraise SystemExit\n```\n"
        "```sh\nmake demo\n```\n  ```python\n  y = 2\n  ```\n"
    )
    blocks = parse_blocks(text)
    assert [(b.language, b.code, b.line, b.skipped, b.output) for b in blocks] == [
        ("python", "x = 1\n", 2, False, "1\n"),
        ("output", "1\n", 6, False, None),
        ("python", "raise SystemExit\n", 10, True, None),
        ("sh", "make demo\n", 13, False, None),
        ("python", "y = 2\n", 16, False, None),
    ]


def _label(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def run_doc(path: Path) -> int:
    """Run the python blocks of one doc; returns how many ran."""
    namespace: dict[str, object] = {"__name__": "__doc_example__"}
    ran = 0
    for block in parse_blocks(path.read_text(encoding="utf-8")):
        if block.language not in ("python", "py") or block.skipped:
            continue
        where = f"{_label(path)}:{block.line}"
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            try:
                exec(compile(block.code, where, "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"the example at {where} failed: {exc!r}") from exc
        if block.output is not None and printed.getvalue() != block.output:
            raise AssertionError(f"the example at {where} printed\n{printed.getvalue()}\n"
                                 f"but the doc shows\n{block.output}")
        ran += 1
    return ran


@pytest.mark.parametrize("path", DOCS, ids=[_label(p) for p in DOCS])
def test_doc_examples_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_doc(path)


def test_readme_and_migration_guide_have_examples() -> None:
    # Guards the parser: if it silently found no blocks, the test above would prove nothing.
    for name in ("README.md", "docs/migration.md"):
        blocks = parse_blocks((ROOT / name).read_text(encoding="utf-8"))
        assert sum(b.language == "python" and not b.skipped for b in blocks) >= 2, name
        assert any(b.output is not None for b in blocks), name


def test_a_wrong_output_block_fails(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("```python\nprint('hi')\n```\n```output\nbye\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="printed\nhi"):
        run_doc(doc)
    doc.write_text("```python\n1 / 0\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match=r"doc.md:1 failed: ZeroDivisionError"):
        run_doc(doc)
