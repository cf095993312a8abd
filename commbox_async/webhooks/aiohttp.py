"""An aiohttp receiver (needs the ``aiohttp`` extra: ``pip install 'commbox-async[aiohttp]'``).

    add_webhook_routes(app, router, prefix="/commbox", secret="...")

Routes: ``POST {prefix}/{subscription}/{name}`` and ``POST {prefix}``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from .._extras import missing_extra

try:
    from aiohttp import web
    from aiohttp.web_protocol import RequestPayloadError
except ImportError as exc:
    raise missing_extra(exc, extra="aiohttp", what="commbox_async.webhooks.aiohttp") from None

from ._receiver import ReceiverConfig, Verdict, check, read_body, redact_server_logs, secret_ok
from .router import WebhookRouter

__all__ = ["add_webhook_routes", "webhook_handler"]


async def _answer(request: web.Request, verdict: Verdict) -> web.Response:
    response = web.Response(status=verdict.status, text=verdict.message)
    if verdict.close:
        # aiohttp would otherwise keep reading (and discarding) the refused body for up to
        # its lingering time, 10 s, to keep the connection (and, for a body it could not
        # read, log the parser's error again): send the answer, then hang up. A client that
        # hung up already gets nothing.
        response.force_close()
        with contextlib.suppress(ConnectionResetError):
            await response.prepare(request)
            await response.write_eof()
        request.protocol.force_close()
    return response


def webhook_handler(router: WebhookRouter, **options: Any) -> Any:
    """An aiohttp request handler receiving CommBox webhooks into ``router``.

    Options are :class:`~commbox_async.webhooks.ReceiverConfig`'s: ``secret``,
    ``secret_param``, ``secret_header``, ``max_bytes``, ``body_timeout``, ``max_depth``,
    ``background``, ``redact_access_log`` (a filter on ``aiohttp.access``, the logger aiohttp's
    runner writes its access log to unless given another, and on ``aiohttp.server``, whose
    error log quotes the request line of a request it cannot parse, that hides the
    ``?secret=`` value; the ``X-CommBox-Secret`` header is the recommended form).
    """
    config = ReceiverConfig(**options)
    redact_server_logs(config, "aiohttp.access", "aiohttp.server")
    background: set[asyncio.Task[int]] = set()

    async def handle(request: web.Request) -> web.Response:
        if not secret_ok(config, request.query, request.headers):
            return web.Response(status=401, text="unauthorized")
        body = await read_body(
            request.content.iter_chunked(65536),
            config,
            declared=request.headers.get("content-length"),
            # Broken chunks or Content-Encoding; the client gone mid-body.
            unreadable=(RequestPayloadError, ConnectionResetError),
        )
        if isinstance(body, Verdict):
            return await _answer(request, body)
        info = request.match_info
        trigger = f"{info['subscription']}/{info['name']}" if "subscription" in info else None
        verdict = check(
            config, body, content_type=request.headers.get("content-type"), trigger=trigger
        )
        if verdict.event is None:
            return await _answer(request, verdict)
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
    """``POST {prefix}`` and ``POST {prefix}/{subscription}/{name}`` into ``router``; options
    as :func:`webhook_handler`'s."""
    handler = webhook_handler(router, **options)
    prefix = prefix.rstrip("/")
    app.router.add_post(prefix or "/", handler)
    app.router.add_post(f"{prefix}/{{subscription}}/{{name}}", handler)
