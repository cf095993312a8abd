"""A FastAPI app: one CommBox client for the app's life, and CommBox's webhooks received in it.

    COMMBOX_TOKEN=... uvicorn examples.fastapi_app:app

- ``POST /customers/{phone}/welcome`` starts an SMS conversation in stream 532;
- CommBox's webhooks arrive under ``/commbox`` (``/commbox/object/onnew``, ...; point the
  callback URLs there), and a new conversation gets a remark.

The client is built in the lifespan by ``make_client``: the app passes ``AsyncCommBox``, a test
passes the ``commbox_client`` fixture (see ``test_fastapi_app.py`` beside this file).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from commbox_async import AsyncCommBox, NewObject
from commbox_async.webhooks import ObjectNew, WebhookRouter
from commbox_async.webhooks.starlette import webhook_app

STREAM_ID = 532


def create_app(make_client: Callable[[], AsyncCommBox] = AsyncCommBox) -> FastAPI:
    router = WebhookRouter()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with make_client() as cb:  # one pool, one rate limit for every request
            app.state.commbox = cb
            yield

    app = FastAPI(lifespan=lifespan)
    secret = os.environ.get("COMMBOX_WEBHOOK_SECRET")  # ?secret= or X-CommBox-Secret, if set
    app.mount("/commbox", webhook_app(router, secret=secret))

    @router.on(ObjectNew)
    async def note_new_conversation(event: ObjectNew) -> None:
        await app.state.commbox.objects.add_remark(event.object_id, "Seen by the shop's app")

    @app.post("/customers/{phone}/welcome")
    async def welcome(phone: str, request: Request) -> dict[str, int]:
        cb: AsyncCommBox = request.app.state.commbox
        object_id = await cb.objects.create(
            STREAM_ID, NewObject.sms(user_stream_provider_id=phone, message="Welcome to the shop!")
        )
        return {"object_id": object_id}

    return app


app = create_app()

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8080)
