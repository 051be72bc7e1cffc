"""Crash-safe turns: a turn (question + answer) is stored with one append, so a SIGKILL at
any moment leaves the whole turn or no trace of it, never a question without its answer.

A child process runs turns in a loop on one session, with a fake model that streams its
answer slowly (so kills land while the answer streams, while the turn is written, and in
between), and prints a line after each acknowledged turn; the parent SIGKILLs it at
random moments, many times per backend, then reads the session: it must be whole
(human, ai) turns, and every acknowledged turn must be there. So that a trial costs a few
milliseconds rather than an interpreter start, the children are forked from one process
that has imported everything already (each child opens its own store after the fork).

Backends: SQLite, the ``file://`` store and PostgreSQL through ``Conversation.turn`` (the
chat's turn), and a JSON Lines ``FileChatMessageHistory`` through
``RunnableWithMessageHistory.stream``. The figures are printed (``pytest -s``) and, for a
failure, in the assertion message.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import require_server

from threadline import AIMessage, FileChatMessageHistory, HumanMessage
from threadline.stores import open_store

TRIALS = 48
#: Bytes in each question (and so in its echoed answer): a turn's write spans memory
#: pages, so that a kill can tear it (the file backends must then drop the whole turn).
BODY = 3000

ZYGOTE = r"""
    import os, sys, warnings
    warnings.simplefilter("ignore")  # a torn turn left by the previous kill is reported
    from threadline import ChatPromptTemplate, EchoChatModel, FileChatMessageHistory
    from threadline import RunnableWithMessageHistory
    from threadline.cli._conversation import Conversation
    from threadline.stores import backend_class, open_store

    kind, target, body = sys.argv[1], sys.argv[2], "x" * int(sys.argv[3])
    real_write = os.write

    def say(line):
        # One write() per line (atomic on a pipe): the zygote and its child share stdout.
        real_write(1, (line + "\n").encode())
    if kind != "jsonl":
        backend_class(target.partition(":")[0])  # import it once, before forking

    if kind in ("file", "jsonl"):
        # A slow disk: every write() stores at most 1 KB, then takes 0.3 ms, so a turn's
        # write lasts a few ms and many kills land inside it (threadline's writers loop
        # until all is written, as they must for any short write).
        import time
        def slow_write(fd, data):
            written = real_write(fd, bytes(memoryview(data)[:1024]))
            time.sleep(0.0003)
            return written
        os.write = slow_write

    def run(trial):
        # Word-sized pieces, 1 ms apart: each answer streams for ~5 ms.
        model = EchoChatModel(sleep=0.001)
        if kind == "jsonl":
            prompt = ChatPromptTemplate.from_messages([("placeholder", "{h}"), ("human", "{q}")])
            chain = RunnableWithMessageHistory(
                prompt | model, lambda session_id: FileChatMessageHistory(target),
                input_messages_key="q", history_messages_key="h")
            config = {"configurable": {"session_id": "s"}}
            def turn(question):
                for _ in chain.stream({"q": question}, config=config):
                    pass
        else:
            chat = Conversation(open_store(target), "s", model)
            chat.history()  # connected and set up: kills now land in turns
            def turn(question):
                chat.turn(question)
        say("go")
        n = 0
        while True:
            turn(f"t{trial}n{n} b c {body}")
            say(f"ack {trial} {n}")
            n += 1

    while True:
        line = sys.stdin.readline()
        if not line:
            break
        pid = os.fork()
        if pid == 0:
            try:
                run(int(line))
            finally:
                os._exit(1)
        say(f"pid {pid}")
        os.waitpid(pid, 0)
        say("done")
"""


@dataclass
class Tally:
    """What one backend's kill run did; ``lost`` must stay 0."""

    backend: str
    trials: int = 0
    acknowledged: int = 0
    stored_turns: int = 0
    stored_unacknowledged: int = 0  # killed after the write, before the acknowledgement
    torn_writes: int = 0  # kills that left a torn last line (file backends)
    lost: int = 0

    def __str__(self) -> str:
        return (f"{self.backend}: {self.trials} kills, {self.acknowledged} turns "
                f"acknowledged, {self.stored_turns} stored ({self.stored_unacknowledged} "
                f"killed between write and acknowledgement), {self.torn_writes} torn writes, "
                f"{self.lost} lost")


@contextlib.contextmanager
def zygote(kind: str, target: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(ZYGOTE), kind, target,
                             str(BODY)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, bufsize=1)
    try:
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def kill_trials(kind: str, target: str, tally: Tally, read: Callable[[], list[Any]],
                rng: random.Random) -> set[tuple[int, int]]:
    """Run the trials, reading the session after each kill (``read``): it must end with
    a whole turn every time. The acknowledged turns, as ``(trial, n)``."""
    acknowledged: set[tuple[int, int]] = set()
    # The kill lands within ``window`` seconds of the child's start; the window widens
    # while trials end before their first turn (a slow disk's commits) and narrows back
    # when many turns fit, so the kills keep landing inside turns on any machine.
    window = 0.08
    with zygote(kind, target) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        for trial in range(TRIALS):
            before = len(acknowledged)
            proc.stdin.write(f"{trial}\n")
            proc.stdin.flush()
            # The zygote's "pid" and the child's "go" (it is ready), in either order.
            first, second = proc.stdout.readline(), proc.stdout.readline()
            assert sorted([first.split()[0], second.split()[0]]) == ["go", "pid"], first + second
            pid = int((first if first.startswith("pid") else second).split()[1])
            # A few turns, then the kill lands at a uniformly random point of one of them.
            time.sleep(rng.uniform(0.002, window))
            os.kill(pid, signal.SIGKILL)
            while (line := proc.stdout.readline()) != "done\n":
                assert line, "the zygote died"
                _, t, n = line.split()
                acknowledged.add((int(t), int(n)))
            tally.trials += 1
            ran = len(acknowledged) - before
            window = min(window * 1.5, 1.0) if ran == 0 else (
                max(window / 1.2, 0.08) if ran >= 4 else window)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", RuntimeWarning)
                messages = read()
            tally.torn_writes += any("torn" in str(w.message) for w in caught)
            assert len(messages) % 2 == 0 and (not messages or messages[-1].type == "ai"), (
                f"{tally}: after kill {trial}, a question without its answer")
    tally.acknowledged = len(acknowledged)
    return acknowledged


def check_session(messages: list[Any], acknowledged: set[tuple[int, int]],
                  tally: Tally) -> None:
    """Whole (human, ai) turns, each answer the echo of its question; nothing
    acknowledged missing; per trial, the stored turns are 0..k without a gap."""
    assert len(messages) % 2 == 0, f"{tally}: a question without its answer at the end"
    stored: list[tuple[int, int]] = []
    for question, answer in zip(messages[::2], messages[1::2], strict=True):
        assert isinstance(question, HumanMessage), f"{tally}: {question!r:.80} is no question"
        assert isinstance(answer, AIMessage), f"{tally}: {answer!r:.80} is no answer"
        assert answer.text == question.text, f"{tally}: a partial or foreign answer"
        tag = question.text.split(" ", 1)[0]  # "t<trial>n<n>"
        trial, n = tag[1:].split("n")
        stored.append((int(trial), int(n)))
    assert len(set(stored)) == len(stored), f"{tally}: a turn stored twice"
    assert stored == sorted(stored), f"{tally}: turns out of order"
    tally.stored_turns = len(stored)
    tally.lost = len(acknowledged - set(stored))
    tally.stored_unacknowledged = len(set(stored) - acknowledged)
    for child in {t for t, _ in stored}:
        ns = [n for t, n in stored if t == child]
        assert ns == list(range(len(ns))), f"{tally}: trial {child} has a gap: {ns}"
    print(tally)
    assert tally.lost == 0, str(tally)
    # Only the turn in flight at a kill may be stored unacknowledged.
    assert tally.stored_unacknowledged <= tally.trials, str(tally)
    assert tally.acknowledged > tally.trials, f"{tally}: too few turns ran to test anything"


@pytest.mark.parametrize("kind", ["sqlite", "file", "jsonl", "postgresql"])
def test_sigkill_at_random_moments_leaves_only_whole_turns(kind: str, tmp_path: Path) -> None:
    rng = random.Random()
    tally = Tally(kind)
    if kind == "postgresql":
        require_server("127.0.0.1", 5432, "PostgreSQL")
        target = f"postgresql://postgres@127.0.0.1:5432/test?table=crash_{secrets.token_hex(5)}"
    elif kind == "sqlite":
        target = f"sqlite:///{tmp_path / 'chat.db'}"
    elif kind == "file":
        target = f"file://{tmp_path / 'sessions'}"
    else:
        target = str(tmp_path / "chat.jsonl")
    store = None if kind == "jsonl" else open_store(target)
    try:
        def read() -> list[Any]:
            if store is None:
                return FileChatMessageHistory(target).get_messages()
            return store.get_messages("s")

        acknowledged = kill_trials(kind, target, tally, read, rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a torn last turn is reported
            messages = read()
            check_session(messages, acknowledged, tally)
            if store is not None:
                info = store.session_info("s")
                assert info is not None and info.message_count == len(messages), (
                    f"{tally}: message_count {info and info.message_count} != {len(messages)}")
        if kind in ("file", "jsonl"):
            assert tally.torn_writes > 0, f"{tally}: no kill landed inside a write"
        if kind == "file":
            # Killed metadata rewrites left temporary files; opening the store removes them.
            open_store(target).list_sessions()
            assert not list((tmp_path / "sessions").glob(".*.tmp"))
    finally:
        if store is not None:
            if kind == "postgresql":
                store.destroy()  # type: ignore[attr-defined]
            store.close()
