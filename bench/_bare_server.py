"""The reference for bench_server.py's throughput: a bare Starlette endpoint doing the
same store work as one ``POST /v1/responses`` turn (read the conversation, append the
question and an echoed answer), with no OpenAI wire format, no auth, no validation.

    uvicorn _bare_server:app --factory --app-dir bench   # BARE_STORE=postgresql://...
"""

from __future__ import annotations

import json
import os
import uuid

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from threadline import AIMessage, HumanMessage
from threadline.stores import open_store


def app() -> Starlette:
    store = open_store(os.environ["BARE_STORE"])

    async def turn(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        sid = body["conversation"]
        history = await store.aget_messages(sid)
        text = body["input"]
        answer = AIMessage(text, id=uuid.uuid4().hex)
        await store.aappend(sid, [HumanMessage(text, id=uuid.uuid4().hex), answer])
        return JSONResponse({"id": answer.id, "seen": len(history), "text": text})

    return Starlette(routes=[Route("/turn", turn, methods=["POST"])])
