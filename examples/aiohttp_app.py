"""An aiohttp app: one CommBox client for the app's life (a cleanup context), CommBox's
webhooks received under ``/commbox``.

    COMMBOX_TOKEN=... python examples/aiohttp_app.py

- ``POST /customers/{phone}/welcome`` starts an SMS conversation in stream 532;
- a webhook for a new conversation (``POST /commbox/object/onnew``) gets it a remark.

``make_client`` builds the client: ``AsyncCommBox`` in production, a fake's client in tests.
On asyncio, ``transport="aiohttp"`` sends through aiohttp too (the ``aiohttp`` extra).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from commbox_async import AsyncCommBox, NewObject
from commbox_async.webhooks import ObjectNew, WebhookRouter
from commbox_async.webhooks.aiohttp import add_webhook_routes

STREAM_ID = 532
COMMBOX = web.AppKey("commbox", AsyncCommBox)


def create_app(make_client: Callable[[], AsyncCommBox] = AsyncCommBox) -> web.Application:
    app = web.Application()
    router = WebhookRouter()

    async def commbox_ctx(app: web.Application) -> AsyncIterator[None]:
        async with make_client() as cb:
            app[COMMBOX] = cb
            yield

    @router.on(ObjectNew)
    async def note_new_conversation(event: ObjectNew) -> None:
        await app[COMMBOX].objects.add_remark(event.object_id, "Seen by the shop's app")

    async def welcome(request: web.Request) -> web.Response:
        object_id = await request.app[COMMBOX].objects.create(
            STREAM_ID,
            NewObject.sms(user_stream_provider_id=request.match_info["phone"], message="Welcome!"),
        )
        return web.json_response({"object_id": object_id})

    app.cleanup_ctx.append(commbox_ctx)
    app.router.add_post("/customers/{phone}/welcome", welcome)
    add_webhook_routes(app, router, prefix="/commbox")
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=8080)
