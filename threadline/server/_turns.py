"""One Responses API turn: the prompt, the model's stream, and the one write that stores it.

No HTTP here: ``_responses`` decides where a turn lives (a :class:`Place`) and turns
the :class:`Turn` into JSON or server-sent events.

The prompt is the server's system prompt, the request's ``instructions`` (sent, never
stored), the session's messages without deleted (tombstoned) items, then the input.
When that is more than the model's window less the answer's reserve, the oldest stored
messages go (the kept part starts on a question, as the terminal's conversations do);
the system messages and the input always stay, and an input that cannot fit is a 400.

Storing is one ``append_with_records``: the response record (the response object plus
where the turn sits in the session) and then the input and the answer. It runs shielded
from cancellation, because a client that goes away mid-answer (Starlette cancels the
streaming task) still leaves a turn to store: the question and the partial answer,
marked ``response_metadata={"interrupted": True}``. A model error stores nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from threadline._concurrency import run_sync
from threadline._errors import InputError
from threadline.messages._chunks import AIMessageChunk, merge_chunks
from threadline.messages._values import AIMessage, BaseMessage
from threadline.models._base import BaseChatModel
from threadline.models._counter import TokenCounter
from threadline.server._events import output_message, response_object, usage
from threadline.server._items import RESPONSE_PREFIX
from threadline.stores import Store

__all__ = ["Place", "Turn", "build_prompt", "closing_stream", "model_limits"]

_limits: dict[int, tuple[BaseChatModel, int, TokenCounter]] = {}


async def model_limits(model: BaseChatModel) -> tuple[int, TokenCounter]:
    """The model's context window and token counter, computed once per model in a worker
    thread (a local model loads its file to know them)."""
    found = _limits.get(id(model))
    if found is None or found[0] is not model:
        def compute() -> tuple[int, TokenCounter]:
            from threadline.models._tokens import get_token_counter
            from threadline.models._window import context_window

            return context_window(model), get_token_counter(model)

        window, counter = await run_sync(compute)
        found = _limits[id(model)] = (model, window, counter)
    return found[1], found[2]


#: Per (counter, session): how many leading messages of its visible history were
#: counted, the id of the last of them, and their tokens. A turn re-reads the whole
#: conversation; counting 100 messages costs ~0.5 ms, so only the new ones are counted.
#: The history only grows at its end, and deleting an item only removes messages (which
#: moves the message at that position, so the id check sees it and everything is
#: counted again).
_counted: dict[tuple[int, str], tuple[int, str, int]] = {}
_MAX_COUNTED = 100_000


def _history_tokens(counter: TokenCounter, history: Sequence[BaseMessage],
                    session_id: str | None) -> int:
    known = None if session_id is None else _counted.get((id(counter), session_id))
    start, total = 0, 0
    if known is not None:
        count, last_id, tokens = known
        if 0 < count <= len(history) and history[count - 1].id == last_id:
            start, total = count, tokens
    total += sum(map(counter.message_tokens, history[start:]))
    last = history[-1].id if history else None
    if session_id is not None and last is not None:
        if len(_counted) >= _MAX_COUNTED:
            _counted.clear()
        _counted[(id(counter), session_id)] = (len(history), last, total)
    return total


def build_prompt(head: Sequence[BaseMessage], history: Sequence[BaseMessage],
                 inputs: Sequence[BaseMessage], counter: TokenCounter, budget: int,
                 session_id: str | None = None) -> tuple[list[BaseMessage], int]:
    """``head + history + inputs`` within ``budget`` tokens, the oldest history cut first,
    and its size in tokens (the usage reported, so the prompt is counted once)."""
    from threadline.models._trim import trim_messages

    fixed = counter([*head, *inputs])
    if fixed > budget:
        raise InputError(f"the input does not fit the model's context window: about {fixed} "
                         f"tokens, {budget} available for the prompt")
    total = fixed + _history_tokens(counter, history, session_id)
    if total <= budget:
        return [*head, *history, *inputs], total
    room = budget - fixed + counter.reply_tokens()
    kept = trim_messages(list(history), max_tokens=room, token_counter=counter,
                         include_system=False, start_on="human")
    prompt = [*head, *kept, *inputs]
    return prompt, counter(prompt)


async def closing_stream(stream: AsyncIterator[AIMessageChunk]
                         ) -> AsyncGenerator[AIMessageChunk, None]:
    """``stream``'s chunks; closed when this generator is (closing a local model's stream
    is what stops it generating when the client has gone)."""
    try:
        async for chunk in stream:
            yield chunk
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


@dataclass
class Place:
    """Where a turn is stored; ``session_id=None`` stores nothing (``store=false``)."""

    session_id: str | None
    #: The position the input will take in the session.
    start: int = 0
    #: Create the session as a fork of (source, at) first.
    fork: tuple[str, int] | None = None
    #: Create the session (a new conversation) with this owner and title.
    new: bool = False
    owner: str | None = None
    title: str | None = None
    #: Records to write beside the turn (what a fork copies: expiry, tombstones).
    records: dict[str, bytes] = field(default_factory=dict)
    ttl: float | None = None


@dataclass
class Turn:
    """A turn under way: ``texts()`` streams the answer, ``save()`` stores it once."""

    store: Store
    model: BaseChatModel
    prompt: list[BaseMessage]
    inputs: list[BaseMessage]
    place: Place
    #: The response object as created (status in_progress): ids and request settings.
    response: dict[str, Any]
    counter: TokenCounter
    #: The prompt's size in tokens (by ``counter``), the usage unless the model says.
    prompt_tokens: int
    #: The answer's message id (also its output item id).
    answer_id: str
    options: dict[str, Any] = field(default_factory=dict)
    chunks: list[AIMessageChunk] = field(default_factory=list)
    finished: bool = False
    result: dict[str, Any] | None = None

    async def texts(self) -> AsyncGenerator[str, None]:
        """The answer's text pieces as the model streams them."""
        async for chunk in closing_stream(self.model.astream(self.prompt, **self.options)):
            self.chunks.append(chunk)
            if chunk.text:
                yield chunk.text
        self.finished = True

    def answer(self) -> AIMessage:
        merged = merge_chunks(self.chunks).to_message() if self.chunks else AIMessage("")
        metadata = dict(merged.response_metadata or {})
        if not self.finished:
            metadata["interrupted"] = True
        return AIMessage(merged.content, response_metadata=metadata,
                         usage_metadata=merged.usage_metadata, id=self.answer_id)

    def _usage(self, answer: AIMessage) -> dict[str, Any]:
        given = answer.usage_metadata or {}
        prompt, output = given.get("input_tokens"), given.get("output_tokens")
        if not isinstance(prompt, int):
            prompt = self.prompt_tokens
        if not isinstance(output, int):
            output = self.counter.message_tokens(AIMessage(answer.text))
        return usage(prompt, output)

    def final(self, answer: AIMessage) -> dict[str, Any]:
        """The finished response object for ``answer``."""
        reason = None
        if not self.finished:
            reason = "interrupted"
        elif (answer.response_metadata or {}).get("finish_reason") in ("length", "max_tokens"):
            reason = "max_output_tokens"
        status = "incomplete" if reason else "completed"
        base = self.response
        return response_object(
            base["id"], created_at=base["created_at"], model=base["model"], status=status,
            output=[output_message(self.answer_id, answer.text, status)],
            conversation=(base["conversation"] or {}).get("id"),
            previous_response_id=base["previous_response_id"],
            instructions=base["instructions"], metadata=base["metadata"],
            store=base["store"], temperature=base["temperature"],
            max_output_tokens=base["max_output_tokens"], usage=self._usage(answer),
            completed_at=int(time.time()) if status == "completed" else None,
            incomplete_reason=reason)

    async def save(self) -> dict[str, Any]:
        """Store the turn (once; an unfinished answer as interrupted) and return the final
        response object. Shielded: a cancelled request still stores what it showed."""
        if self.result is not None:
            return self.result
        answer = self.answer()
        final = self.final(answer)
        self.result = final
        place = self.place
        if place.session_id is None:
            return final
        record = {"response": final,
                  "turn": {"start": place.start, "end": place.start + len(self.inputs) + 1,
                           "input_ids": [m.id for m in self.inputs], "answer_id": answer.id}}
        records = {**place.records,
                   RESPONSE_PREFIX + final["id"]: json.dumps(record).encode("utf-8")}
        with anyio.CancelScope(shield=True):
            sid = place.session_id
            if place.fork is not None:
                source, at = place.fork
                info = await self.store.afork(source, sid, at=at)
                if info.owner != place.owner:
                    await self.store.aupdate_session(sid, owner=place.owner)
            elif place.new:
                await self.store.aupdate_session(sid, owner=place.owner, title=place.title)
            await self.store.aappend_with_records(sid, [*self.inputs, answer], records,
                                                  ttl=place.ttl)
        return final
