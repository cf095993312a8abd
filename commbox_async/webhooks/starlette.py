"""A Starlette/FastAPI receiver (needs the ``fake`` or ``webhooks`` extra: starlette).

    app.mount("/commbox", webhook_app(router, secret="..."))

Routes: ``POST /commbox/{subscription}/{name}`` (e.g. ``/object/onnewchild``, one callback URL
per trigger) and ``POST /commbox`` (XML, or JSON whose kind is inferred from its shape).
"""

from __future__ import annotations

from typing import Any

from .._extras import missing_extra

try:
    from starlette.background import BackgroundTask
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, Router
except ImportError as exc:
    raise missing_extra(exc, extra="webhooks", what="commbox_async.webhooks.starlette") from None

from ._receiver import ReceiverConfig, Verdict, check, read_body, redact_server_logs, secret_ok
from .router import WebhookRouter

__all__ = ["webhook_app"]


def _answer(verdict: Verdict) -> PlainTextResponse:
    # "Connection: close" makes the server (uvicorn, hypercorn) drop the connection rather
    # than read the rest of a body it refused, to the end, to keep the connection alive.
    headers = {"connection": "close"} if verdict.close else None
    return PlainTextResponse(verdict.message, status_code=verdict.status, headers=headers)


def webhook_app(router: WebhookRouter, **options: Any) -> Router:
    """An ASGI app (a Starlette ``Router``) receiving CommBox webhooks into ``router``.

    Options are :class:`~commbox_async.webhooks.ReceiverConfig`'s: ``secret``,
    ``secret_param``, ``secret_header``, ``max_bytes``, ``body_timeout``, ``max_depth``,
    ``background``, ``redact_access_log`` (a filter on ``uvicorn.access`` and
    ``uvicorn.error`` that hides the ``?secret=`` value; the ``X-CommBox-Secret`` header is
    the recommended form).
    """
    config = ReceiverConfig(**options)
    redact_server_logs(config, "uvicorn.access", "uvicorn.error")

    async def receive(request: Request) -> PlainTextResponse:
        if not secret_ok(config, request.query_params, request.headers):
            return PlainTextResponse("unauthorized", status_code=401)
        body = await read_body(
            request.stream(),
            config,
            declared=request.headers.get("content-length"),
            encoding=request.headers.get("content-encoding"),
            # The client gone mid-body, or its chunks broken (uvicorn ends the request so).
            unreadable=(ClientDisconnect,),
        )
        if isinstance(body, Verdict):
            return _answer(body)
        trigger = None
        if "subscription" in request.path_params:
            trigger = f"{request.path_params['subscription']}/{request.path_params['name']}"
        verdict = check(
            config, body, content_type=request.headers.get("content-type"), trigger=trigger
        )
        if verdict.event is None:
            return _answer(verdict)
        if config.background:
            return PlainTextResponse(
                "accepted", background=BackgroundTask(router.dispatch, verdict.event)
            )
        await router.dispatch(verdict.event)  # an exception here answers 500: CommBox re-delivers
        return PlainTextResponse("ok")

    return Router(
        routes=[
            Route("/", receive, methods=["POST"]),
            Route("/{subscription}/{name}", receive, methods=["POST"]),
        ],
    )
