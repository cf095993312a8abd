"""An aiohttp receiver (needs the ``aiohttp`` extra: ``pip install 'commbox-async[aiohttp]'``).

    add_webhook_routes(app, router, prefix="/commbox", secret="...")

Routes: ``POST {prefix}/{subscription}/{name}`` and ``POST {prefix}``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .._extras import missing_extra

try:
    from aiohttp import web
except ImportError as exc:
    raise missing_extra(exc, extra="aiohttp", what="commbox_async.webhooks.aiohttp") from None

from ._receiver import ReceiverConfig, check, secret_ok
from .router import WebhookRouter

__all__ = ["add_webhook_routes", "webhook_handler"]


def webhook_handler(router: WebhookRouter, **options: Any) -> Any:
    """An aiohttp request handler receiving CommBox webhooks into ``router``."""
    config = ReceiverConfig(**options)
    background: set[asyncio.Task[int]] = set()

    async def handle(request: web.Request) -> web.Response:
        if not secret_ok(config, request.query, request.headers):
            return web.Response(status=401, text="unauthorized")
        if request.content_length is not None and request.content_length > config.max_bytes:
            return web.Response(status=413, text="payload too large")
        body = bytearray()
        async for chunk in request.content.iter_chunked(65536):
            body += chunk
            if len(body) > config.max_bytes:
                return web.Response(status=413, text="payload too large")
        info = request.match_info
        trigger = f"{info['subscription']}/{info['name']}" if "subscription" in info else None
        verdict = check(
            config, bytes(body), content_type=request.headers.get("content-type"), trigger=trigger
        )
        if verdict.event is None:
            return web.Response(status=verdict.status, text=verdict.message)
        if config.background:
            task = asyncio.create_task(router.dispatch(verdict.event))
            background.add(task)
            task.add_done_callback(background.discard)
            return web.Response(text="accepted")
        try:
            await router.dispatch(verdict.event)
        except Exception:
            # Non-2xx so CommBox re-delivers; the handler's error is logged by aiohttp's logger.
            request.app.logger.exception("CommBox webhook handler failed")
            return web.Response(status=500, text="handler failed")
        return web.Response(text="ok")

    return handle


def add_webhook_routes(
    app: web.Application, router: WebhookRouter, *, prefix: str = "/commbox", **options: Any
) -> None:
    handler = webhook_handler(router, **options)
    prefix = prefix.rstrip("/")
    app.router.add_post(prefix or "/", handler)
    app.router.add_post(f"{prefix}/{{subscription}}/{{name}}", handler)
