"""The Conversations API (OpenAI's shapes), and what OpenAI lacks.

A conversation is a store session: those the server creates (``conv_…``) and those the
terminal or any app wrote (``threadline chat``), whose messages are shown as items by
:mod:`~threadline.server._items`. OpenAI's routes:

- ``POST /v1/conversations``, ``GET|POST|DELETE /v1/conversations/{id}``
- ``POST|GET /v1/conversations/{id}/items``, ``GET|DELETE …/items/{item_id}``

Extensions (same conventions): ``GET /v1/conversations`` (most recent first, a cursor,
``metadata[key]=value`` filters, ``q=`` full-text search with snippets),
``POST /v1/conversations/{id}/fork`` and ``GET /v1/conversations/{id}/export`` (JSON
Lines, the format of ``threadline sessions export``); ``title`` and ``expires_after``
on create and update.

Messages are never rewritten: deleting an item writes a tombstone record
(``DELETED_PREFIX`` + the escaped item id) and every reader leaves tombstoned items out
(:func:`visible_messages` for whole messages). A conversation created with
``expires_after`` keeps its seconds in the ``EXPIRY_KEY`` record and every append to it
passes that TTL (:func:`session_ttl`), so it expires that long after its last activity.

Listing the items reads the whole session: a conversation is read whole by the model on
every turn anyway, and item ids (not positions) are the cursor, so a page stays right
while items are added or deleted. An ``after`` naming no item of the conversation is a
404 naming ``after`` (as for any unknown id); a deleted item still works as a cursor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from threadline._errors import InputError
from threadline.messages._values import BaseMessage
from threadline.server._conversation_wire import (
    ConversationCreate,
    ConversationDeleted,
    ConversationList,
    ConversationMatch,
    ConversationObject,
    ConversationUpdate,
    ForkRequest,
    ItemList,
    ItemsCreate,
)
from threadline.server._errors import ApiError, not_found
from threadline.server._items import (
    EXPIRY_KEY,
    deleted_items,
    input_messages,
    item_id,
    message_items,
    new_id,
    session_items,
    session_ttl,
    tombstone_key,
    visible_messages,
)
from threadline.server._keys import RESERVED_PREFIX
from threadline.server._state import (
    Caller,
    CallerDep,
    ServerState,
    StateDep,
    owned_session,
)
from threadline.stores import SessionInfo, Store
from threadline.stores._records import escape_key_part
from threadline.stores._sessions import (
    MAX_SEARCH_LIMIT,
    UNSET,
    check_metadata,
    check_search_args,
    metadata_matches,
)
from threadline.stores._transfer import export_line

__all__ = ["conversation_object", "router",
           "visible_messages"]

router = APIRouter(tags=["conversations"])

#: Conversations listed per page at most (OpenAI's bound for its lists).
MAX_LIMIT = 100
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


# -- helpers other modules use --------------------------------------------------------------

def _epoch(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp())


def conversation_object(info: SessionInfo) -> ConversationObject:
    """The conversation object of a session."""
    return ConversationObject(
        id=info.session_id, created_at=_epoch(info.created_at or info.updated_at) or 0,
        metadata=dict(info.metadata), title=info.title, updated_at=_epoch(info.updated_at),
        message_count=info.message_count, parent=info.parent, fork_point=info.fork_point,
        expires_at=_epoch(info.expires_at))


# -- reading ---------------------------------------------------------------------------------

async def _items(store: Store, sid: str) -> tuple[list[dict[str, Any]], set[str]]:
    """Every item of the session (oldest first, deleted ones included) and the deleted
    ids."""
    messages, deleted = await asyncio.gather(store.aget_messages(sid),
                                             deleted_items(store, sid))
    return session_items(messages), deleted


def _find(items: Sequence[dict[str, Any]], ident: str) -> int | None:
    return next((n for n, item in enumerate(items) if item["id"] == ident), None)


async def _info(store: Store, sid: str) -> ConversationObject:
    info = await store.asession_info(sid)
    if info is None:  # deleted meanwhile by another request
        raise not_found("Conversation", sid, "conversation_id")
    return conversation_object(info)


def _item_list(items: list[dict[str, Any]], has_more: bool = False) -> ItemList:
    return ItemList(data=items, first_id=items[0]["id"] if items else None,
                    last_id=items[-1]["id"] if items else None, has_more=has_more)


# -- writing ---------------------------------------------------------------------------------

def _check_unique(messages: Sequence[BaseMessage], param: str) -> None:
    """Two items of one request with the same id: the store would keep only the first."""
    seen: set[str | None] = set()
    for n, message in enumerate(messages):
        if message.id in seen:
            raise ApiError(400, f"Invalid '{param}[{n}].id': {message.id!r:.200} is given "
                           "twice.", param=f"{param}[{n}].id", code="invalid_value")
        seen.add(message.id)


async def _check_new(store: Store, sid: str, raw: Sequence[dict[str, Any]],
                     messages: Sequence[BaseMessage]) -> None:
    """Items sent with ids the conversation already holds: the same item again is a
    retry (stored once: appends are idempotent); another item under a used id, or a
    deleted one, is a 400 rather than a silently ignored item."""
    _check_unique(messages, "items")
    if not any("id" in item for item in raw):
        return
    stored, deleted = await asyncio.gather(store.aget_messages(sid),
                                           deleted_items(store, sid))
    known = {message.id: message for message in stored if message.id}
    for n, message in enumerate(messages):
        old = known.get(message.id) if message.id else None
        if old is not None and (old != message or message.id in deleted):
            raise ApiError(400, f"Invalid 'items[{n}].id': the conversation already holds "
                           f"an item {message.id!r:.200}; item ids cannot be reused.",
                           param=f"items[{n}].id", code="invalid_value")


async def _set_expiry(store: Store, sid: str, seconds: int | None) -> None:
    if seconds is None:
        await store.adelete_records(sid, [EXPIRY_KEY])
    else:
        await store.aput_records(sid, {EXPIRY_KEY: str(seconds).encode()}, ttl=seconds)
    await store.aexpire(sid, seconds)


# -- OpenAI's routes -------------------------------------------------------------------------

@router.post("/v1/conversations")
async def create_conversation(body: ConversationCreate, state: StateDep,
                              caller: CallerDep) -> ConversationObject:
    """Create a conversation, with up to 20 first items."""
    messages = input_messages(body.items or [], "items")  # a bad item: nothing stored
    _check_unique(messages, "items")
    store, sid = state.store, new_id("conv")
    seconds = body.expires_after.seconds if body.expires_after else None
    await store.aupdate_session(sid, title=body.title, metadata=body.metadata,
                                owner=caller.owner)
    try:
        if seconds is not None:
            await _set_expiry(store, sid, seconds)
        if messages:
            await store.aappend(sid, messages, ttl=seconds)
    except Exception:  # no half-made conversation left behind
        await store.adelete_session(sid)
        raise
    return await _info(store, sid)


@router.get("/v1/conversations/{conversation_id}")
async def retrieve_conversation(conversation_id: str, state: StateDep,
                                caller: CallerDep) -> ConversationObject:
    return conversation_object(await owned_session(state, caller, conversation_id))


@router.post("/v1/conversations/{conversation_id}")
async def update_conversation(conversation_id: str, body: ConversationUpdate,
                              state: StateDep, caller: CallerDep) -> ConversationObject:
    """Change the fields given (``metadata`` is replaced whole; ``null`` clears)."""
    info = await owned_session(state, caller, conversation_id)
    given, store = body.model_fields_set, state.store
    if given & {"metadata", "title"}:
        # the owner again: a session deleted meanwhile comes back as the caller's
        await store.aupdate_session(
            conversation_id, owner=info.owner,
            metadata=body.metadata if "metadata" in given else UNSET,
            title=body.title if "title" in given else UNSET)
    if "expires_after" in given:
        await _set_expiry(store, conversation_id,
                          body.expires_after.seconds if body.expires_after else None)
    return await _info(store, conversation_id)


@router.delete("/v1/conversations/{conversation_id}")
async def delete_conversation(conversation_id: str, state: StateDep,
                              caller: CallerDep) -> ConversationDeleted:
    await owned_session(state, caller, conversation_id)
    await state.store.adelete_session(conversation_id)
    return ConversationDeleted(id=conversation_id)


@router.post("/v1/conversations/{conversation_id}/items")
async def create_items(conversation_id: str, body: ItemsCreate, state: StateDep,
                       caller: CallerDep) -> ItemList:
    """Add up to 20 items; the answer lists them as stored."""
    info = await owned_session(state, caller, conversation_id)
    messages = input_messages(body.items, "items")
    store = state.store
    await _check_new(store, conversation_id, body.items, messages)
    await store.aappend(conversation_id, messages,
                        ttl=await session_ttl(store, conversation_id))
    return _item_list([item for n, message in enumerate(messages)
                       for item in message_items(message, info.message_count + n)])


@router.get("/v1/conversations/{conversation_id}/items")
async def list_items(conversation_id: str, state: StateDep, caller: CallerDep,
                     after: str | None = None, limit: Limit = 20,
                     order: Literal["asc", "desc"] = "desc") -> ItemList:
    """A page of items, newest first by default; ``after`` is the last id of the
    previous page."""
    await owned_session(state, caller, conversation_id)
    items, deleted = await _items(state.store, conversation_id)
    if order == "desc":
        items.reverse()
    if after is not None:
        start = _find(items, after)
        if start is None:
            raise not_found("Item", after, "after")
        items = items[start + 1:]
    shown = [item for item in items if item["id"] not in deleted]
    return _item_list(shown[:limit], has_more=len(shown) > limit)


async def _live_item(state: ServerState, caller: Caller, conversation_id: str,
                     ident: str) -> dict[str, Any]:
    await owned_session(state, caller, conversation_id)
    items, deleted = await _items(state.store, conversation_id)
    position = _find(items, ident)
    if position is None or ident in deleted:
        raise not_found("Item", ident, "item_id")
    return items[position]


@router.get("/v1/conversations/{conversation_id}/items/{item_id:path}")
async def retrieve_item(conversation_id: str, item_id: str, state: StateDep,
                        caller: CallerDep) -> dict[str, Any]:
    return await _live_item(state, caller, conversation_id, item_id)


@router.delete("/v1/conversations/{conversation_id}/items/{item_id:path}")
async def delete_item(conversation_id: str, item_id: str, state: StateDep,
                      caller: CallerDep) -> ConversationObject:
    """Delete an item (a tombstone: the model no longer reads it); answers the
    conversation, as OpenAI does."""
    await _live_item(state, caller, conversation_id, item_id)
    store = state.store
    await store.aput_records(conversation_id, {tombstone_key(item_id): b"1"},
                             ttl=await session_ttl(store, conversation_id))
    return await _info(store, conversation_id)


# -- extensions ------------------------------------------------------------------------------

def _metadata_filter(request: Request) -> dict[str, str] | None:
    """``metadata[key]=value`` query parameters (every pair must match)."""
    wanted: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if not (name.startswith("metadata[") and name.endswith("]")):
            continue
        key = name[len("metadata["):-1]
        if wanted.get(key, value) != value:
            raise ApiError(400, f"Invalid 'metadata[{key:.64}]': given twice with different "
                           "values.", param="metadata", code="invalid_value")
        wanted[key] = value
    try:
        return check_metadata(wanted) or None
    except InputError as exc:
        raise ApiError(400, f"Invalid 'metadata': {exc}", param="metadata",
                       code="invalid_value") from None


async def _visible_infos(store: Store, caller: Caller, ids: Sequence[str]
                         ) -> list[SessionInfo]:
    ids = [sid for sid in ids if not sid.startswith(RESERVED_PREFIX)]
    infos = await asyncio.gather(*(store.asession_info(sid) for sid in ids))
    return [info for info in infos if info is not None and caller.may_see(info)]


def _page(data: Sequence[ConversationObject], has_more: bool,
          cursor: str | None) -> ConversationList:
    return ConversationList(data=list(data), first_id=data[0].id if data else None,
                            last_id=data[-1].id if data else None, has_more=has_more,
                            next_cursor=cursor)


@router.get("/v1/conversations")
async def list_conversations(request: Request, state: StateDep, caller: CallerDep,
                             limit: Limit = 20, after: str | None = None,
                             q: str | None = None) -> ConversationList:
    """*Extension*: the caller's conversations, most recent first; ``after`` is the
    ``next_cursor`` of the previous page. ``metadata[key]=value`` keeps those holding
    the pair; ``q`` searches the text instead (conversations in match order, each with
    a ``snippet``; one page: raise ``limit`` for more)."""
    wanted = _metadata_filter(request)
    if q is not None:
        if after is not None:
            raise ApiError(400, "Invalid 'after': search results ('q') come in one page.",
                           param="after", code="invalid_value")
        return await _search(state.store, caller, q, wanted, limit)
    infos: list[SessionInfo] = []
    cursor = after
    while True:  # more pages when some ids were not conversations (reserved, gone)
        try:
            page = await state.store.alist_sessions(
                order="recent", owner=caller.user, metadata=wanted,
                limit=limit - len(infos), cursor=cursor)
        except InputError as exc:  # the rest was checked above: the cursor is bad
            raise ApiError(400, f"Invalid 'after': {exc}", param="after",
                           code="invalid_value") from None
        infos += await _visible_infos(state.store, caller, page.session_ids)
        cursor = page.next_cursor
        if cursor is None or len(infos) >= limit:
            break
    return _page([conversation_object(info) for info in infos], cursor is not None, cursor)


async def _search(store: Store, caller: Caller, query: str,
                  wanted: Mapping[str, str] | None, limit: int) -> ConversationList:
    hits_limit = min(MAX_SEARCH_LIMIT, limit * 10)  # several hits per conversation
    try:
        check_search_args(query, caller.user, hits_limit)
    except InputError as exc:
        raise ApiError(400, f"Invalid 'q': {exc}", param="q", code="invalid_value") from None
    hits = await store.asearch(query, owner=caller.user, limit=hits_limit)
    ids = list(dict.fromkeys(hit.session_id for hit in hits))
    infos = {info.session_id: info for info in await _visible_infos(store, caller, ids)
             if metadata_matches(info.metadata, wanted)}
    # a hit in a deleted item is no hit: sessions with tombstones are read to tell
    deleted = dict(zip(infos, await asyncio.gather(
        *(deleted_items(store, sid) for sid in infos)), strict=True))
    messages = dict(zip([sid for sid in infos if deleted[sid]], await asyncio.gather(
        *(store.aget_messages(sid) for sid in infos if deleted[sid])), strict=True))
    found: dict[str, ConversationMatch] = {}
    for hit in hits:
        sid = hit.session_id
        if sid in found or sid not in infos:
            continue
        stored = messages.get(sid)
        if stored is not None and (hit.position >= len(stored) or item_id(
                stored[hit.position], hit.position) in deleted[sid]):
            continue
        found[sid] = ConversationMatch(**conversation_object(infos[sid]).model_dump(),
                                       snippet=hit.snippet)
    data = list(found.values())
    return _page(data[:limit], len(data) > limit, None)


@router.post("/v1/conversations/{conversation_id}/fork")
async def fork_conversation(conversation_id: str, state: StateDep, caller: CallerDep,
                            body: ForkRequest | None = None) -> ConversationObject:
    """*Extension*: a new conversation holding this one's items up to and including
    ``item_id`` (default: all), with its metadata, deleted items and expiry."""
    info = await owned_session(state, caller, conversation_id)
    body = body or ForkRequest()
    store = state.store
    messages, deleted = await asyncio.gather(store.aget_messages(conversation_id),
                                             deleted_items(store, conversation_id))
    at = len(messages)
    if body.item_id is not None:
        at = next((position + 1 for position, message in enumerate(messages)
                   if any(item["id"] == body.item_id
                          for item in message_items(message, position))), 0)
        if not at or body.item_id in deleted:
            raise not_found("Item", body.item_id, "item_id")
    new = new_id("conv")
    await store.afork(conversation_id, new, at=at)
    kept = {item["id"] for item in session_items(messages[:at])} & deleted
    seconds = await session_ttl(store, conversation_id)
    records = {tombstone_key(ident): b"1" for ident in kept}
    if seconds is not None:
        records[EXPIRY_KEY] = str(int(seconds)).encode()
    if records:
        await store.aput_records(new, records, ttl=seconds)
    if seconds is not None:
        await store.aexpire(new, seconds)
    if "title" in body.model_fields_set or info.owner != caller.owner:
        await store.aupdate_session(
            new, owner=caller.owner,
            title=body.title if "title" in body.model_fields_set else UNSET)
    return await _info(store, new)


@router.get("/v1/conversations/{conversation_id}/export", response_class=Response,
            responses={200: {"content": {"application/x-ndjson": {}},
                             "description": "JSON Lines, as `threadline sessions export`."}})
async def export_conversation(conversation_id: str, state: StateDep,
                              caller: CallerDep) -> Response:
    """*Extension*: the conversation as JSON Lines (``threadline sessions import`` reads
    it), deleted items left out."""
    await owned_session(state, caller, conversation_id)
    store = state.store
    # read whole before answering, so a failing read is an error answer, not a cut file
    messages, deleted = await asyncio.gather(store.aget_messages(conversation_id),
                                             deleted_items(store, conversation_id))
    body = "".join(export_line(conversation_id, message)
                   for message in visible_messages(messages, deleted))
    filename = escape_key_part(conversation_id).replace("%", "_")
    return Response(body, media_type="application/x-ndjson", headers={
        "content-disposition": f'attachment; filename="{filename}.jsonl"'})
