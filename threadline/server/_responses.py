"""The Responses API: ``POST /v1/responses`` and reading back what it stored.

Where a turn lives:

- ``conversation``: in that conversation (the caller's; else 404).
- ``previous_response_id``: after that response, in its session. If the session has
  moved on since (the response is not its last turn), the turn branches off: the session
  is forked at the end of that response (``parent``/``fork_point`` say so) and the turn
  continues in the fork, as OpenAI's chains branch.
- neither: a new conversation, titled after the first question; with ``store: false``
  nothing is written at all.

A response is kept as the record ``openai:response:<id>`` of its session, written in the
same call as the turn's messages (see :mod:`~threadline.server._turns`); its id names the
session (:func:`~threadline.server._items.response_id`), so reading it back needs no
index, and owning the session is owning its responses.

``stream: true`` answers with server-sent events (:mod:`~threadline.server._events`),
``response.created`` first, before the model is called, and one delta per model chunk,
unbuffered. A client that disconnects mid-answer (or the web chat's stop button) leaves
the question and the partial answer stored as interrupted.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query
from starlette.responses import JSONResponse, StreamingResponse
from starlette.types import Send

from threadline._errors import InputError
from threadline.messages._values import BaseMessage, HumanMessage, SystemMessage
from threadline.models._window import ANSWER_RESERVE
from threadline.server._errors import ApiError, as_api_error, not_found
from threadline.server._events import (
    EventCounter,
    output_message,
    response_object,
    sse,
    text_part,
)
from threadline.server._items import (
    RESPONSE_PREFIX,
    deleted_items,
    input_messages,
    message_items,
    new_id,
    read_conversation,
    response_id,
    response_session,
    visible_messages,
)
from threadline.server._state import (
    Caller,
    CallerDep,
    ServerState,
    StateDep,
    owned_session,
    session_id_param,
)
from threadline.server._turns import Place, Turn, build_prompt, model_limits
from threadline.server._wire import ResponseRequest

__all__ = ["router"]

router = APIRouter()

TITLE_LENGTH = 60


def _title(inputs: list[BaseMessage]) -> str | None:
    for message in inputs:
        if isinstance(message, HumanMessage):
            text = " ".join(message.text.split())
            if text:
                return text if len(text) <= TITLE_LENGTH else text[:TITLE_LENGTH - 1] + "…"
    return None


async def _response_record(state: ServerState, caller: Caller, resp_id: str,
                           param: str | None = None) -> tuple[str, dict[str, Any]]:
    """The session and stored record of a response the caller may see, else a 404."""
    missing = not_found("Response", resp_id, param)
    session_id = response_session(resp_id)
    if session_id is None:
        raise missing
    try:
        await owned_session(state, caller, session_id, param=param or "response_id",
                            kind="Response")
    except ApiError:
        raise missing from None
    key = RESPONSE_PREFIX + resp_id
    raw = (await state.store.aget_records(session_id, [key])).get(key)
    if raw is None:
        raise missing
    record: dict[str, Any] = json.loads(raw)
    return session_id, record


async def _after_response(state: ServerState, caller: Caller, prev: str,
                          store: bool) -> tuple[Place, list[BaseMessage]]:
    """Continue after ``prev``: in its session, or in a fork of it (see the docstring)."""
    session_id, record = await _response_record(state, caller, prev, "previous_response_id")
    read = await read_conversation(state.store, session_id)
    messages = read.messages
    turn = record.get("turn", {})
    # The answer's position, found by id: the record's count is only what it was then.
    end = next((n + 1 for n, m in enumerate(messages) if m.id == turn.get("answer_id")),
               min(int(turn.get("end", len(messages))), len(messages)))
    history = visible_messages(messages[:end], read.deleted)
    if not store:
        return Place(None), history
    if end == len(messages):
        return Place(session_id, start=end, ttl=read.ttl), history
    # A branch: the fork keeps the conversation's expiry and its deleted items.
    place = Place(new_id("conv"), start=end, fork=(session_id, end), owner=caller.owner,
                  records=read.meta, ttl=read.ttl)
    return place, history


async def _place(state: ServerState, caller: Caller, body: ResponseRequest,
                 inputs: list[BaseMessage]) -> tuple[Place, list[BaseMessage]]:
    store = body.store is not False
    conversation = body.conversation_id
    if conversation is not None:
        session_id_param(conversation, "conversation")
        read = await read_conversation(state.store, conversation)
        if not caller.may_see(read.info):  # read with the messages; shown only if it passes
            raise not_found("Conversation", conversation, "conversation")
        messages, ttl = read.messages, read.ttl
        history = visible_messages(messages, read.deleted)
        return Place(conversation if store else None, start=len(messages), ttl=ttl), history
    if body.previous_response_id is not None:
        return await _after_response(state, caller, body.previous_response_id, store)
    if not store:
        return Place(None), []
    return Place(new_id("conv"), new=True, owner=caller.owner, title=_title(inputs)), []


async def _turn(state: ServerState, caller: Caller, body: ResponseRequest) -> Turn:
    """Everything checked and read; the model not called yet."""
    if body.conversation is not None and body.previous_response_id is not None:
        raise ApiError(400, "Pass 'conversation' or 'previous_response_id', not both.",
                       param="previous_response_id", code="invalid_value")
    model_id, model = state.model(body.model)
    inputs = input_messages(body.input)
    if not inputs:
        raise ApiError(400, "Invalid 'input': give at least one item.", param="input",
                       code="invalid_value")
    place, history = await _place(state, caller, body, inputs)
    window, counter = await model_limits(model)
    reserve = body.max_output_tokens or getattr(model, "max_tokens", None) or ANSWER_RESERVE
    head: list[BaseMessage] = [SystemMessage(text) for text in (state.system,
                                                                 body.instructions) if text]
    try:
        source = place.fork[0] if place.fork else place.session_id  # where history is from
        prompt, tokens = build_prompt(head, history, inputs, counter,
                                      max(1, window - int(reserve)), source)
    except InputError as exc:
        raise ApiError(400, str(exc), param="input", code="context_length_exceeded") from None
    options: dict[str, Any] = {}
    if body.max_output_tokens is not None:
        options["max_tokens"] = body.max_output_tokens
    if body.temperature is not None:
        options["temperature"] = body.temperature
    sid = place.session_id
    resp_id = response_id(sid) if sid is not None else new_id("resp")
    response = response_object(
        resp_id, created_at=int(time.time()), model=model_id, status="in_progress",
        output=[], conversation=sid if sid is not None else body.conversation_id,
        previous_response_id=body.previous_response_id, instructions=body.instructions,
        metadata=body.metadata, store=sid is not None, temperature=body.temperature,
        max_output_tokens=body.max_output_tokens)
    return Turn(state.store, model, prompt, inputs, place, response, counter, tokens,
                answer_id=new_id("msg"), options=options)


class _EventStream(StreamingResponse):
    """Closes its event generator however the response ends, so a disconnect (Starlette
    cancels the sending task, leaving the generator suspended) still runs its cleanup:
    storing the interrupted turn."""

    def __init__(self, events: AsyncIterator[bytes]) -> None:
        super().__init__(events, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.events = events

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            with anyio.CancelScope(shield=True):
                close = getattr(self.events, "aclose", None)
                if close is not None:
                    await close()


async def _events(turn: Turn) -> AsyncIterator[bytes]:
    counter = EventCounter()
    event = counter.event
    response, item_id = turn.response, turn.answer_id
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    pieces: list[str] = []
    try:  # from the first event: a question asked and then stopped is kept too
        yield sse(event("response.created", response=response))
        yield sse(event("response.in_progress", response=response))
        yield sse(event("response.output_item.added", output_index=0,
                        item=output_message(item_id, None, "in_progress")))
        yield sse(event("response.content_part.added", **where, part=text_part("")))
        async with aclosing(turn.texts()) as texts:
            async for text in texts:
                pieces.append(text)
                yield sse(event("response.output_text.delta", **where, delta=text,
                                logprobs=[]))
        final = await turn.save()
    except Exception as exc:
        error = as_api_error(exc)
        payload = {"type": error.type, "code": error.code or "server_error",
                   "message": error.message, "param": error.param}
        # A response's error code is one of OpenAI's few; the event keeps ours.
        code = "rate_limit_exceeded" if error.status == 429 else "server_error"
        failed = {**response, "status": "failed",
                  "error": {"code": code, "message": error.message}}
        yield sse(event("response.failed", response=failed))
        # OpenAI's SDK reads code/message/param at the top; the Open Responses spec reads
        # them in "error" (and the SDK raises on an "error" object).
        yield sse(event("error", code=payload["code"], message=error.message,
                        param=error.param, error=payload))
        return
    except BaseException:
        await turn.save()  # cancelled or closed mid-answer: stored as interrupted
        raise
    text = "".join(pieces)
    status = final["status"]
    yield sse(event("response.output_text.done", **where, text=text, logprobs=[]))
    yield sse(event("response.content_part.done", **where, part=text_part(text)))
    yield sse(event("response.output_item.done", output_index=0,
                    item=output_message(item_id, text, status)))
    kind = "response.completed" if status == "completed" else "response.incomplete"
    yield sse(event(kind, response=final))


@router.post("/v1/responses")
async def create_response(body: ResponseRequest, state: StateDep,
                          caller: CallerDep) -> Any:
    """Run one turn: the answer as a response object, or streamed as events."""
    turn = await _turn(state, caller, body)
    if body.stream:
        return _EventStream(_events(turn))
    try:
        async with aclosing(turn.texts()) as texts:
            async for _ in texts:
                pass
    except Exception:
        raise  # a model error: nothing stored
    except BaseException:
        await turn.save()
        raise
    # A plain JSON dump: the object is JSON already (FastAPI's encoder would walk it again).
    return JSONResponse(await turn.save())


@router.get("/v1/responses/{response_id}")
async def get_response(response_id: str, state: StateDep, caller: CallerDep) -> Any:
    _, record = await _response_record(state, caller, response_id)
    return record["response"]


@router.delete("/v1/responses/{response_id}")
async def delete_response(response_id: str, state: StateDep,
                          caller: CallerDep) -> dict[str, Any]:
    """Deletes the response record only: the conversation keeps its messages."""
    session_id, _ = await _response_record(state, caller, response_id)
    await state.store.adelete_records(session_id, [RESPONSE_PREFIX + response_id])
    return {"id": response_id, "object": "response.deleted", "deleted": True}


@router.get("/v1/responses/{response_id}/input_items")
async def list_input_items(response_id: str, state: StateDep, caller: CallerDep,
                           after: str | None = None,
                           limit: Annotated[int, Query(ge=1, le=100)] = 20,
                           order: Literal["asc", "desc"] = "desc") -> dict[str, Any]:
    """The items the response was asked with (its input, without deleted items)."""
    session_id, record = await _response_record(state, caller, response_id)
    wanted = set(record.get("turn", {}).get("input_ids", ()))
    messages = await state.store.aget_messages(session_id)
    deleted = await deleted_items(state.store, session_id)
    items = [item for position, message in enumerate(messages) if message.id in wanted
             for item in message_items(message, position) if item["id"] not in deleted]
    if order == "desc":
        items.reverse()
    if after is not None:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise ApiError(400, f"Invalid 'after': no item '{after:.200}' in this "
                           "response's input.", param="after", code="invalid_value")
        items = items[ids.index(after) + 1:]
    page = items[:limit]
    return {"object": "list", "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit}
