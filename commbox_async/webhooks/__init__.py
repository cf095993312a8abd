"""CommBox webhooks: typed events from XML and JSON bodies, a router, and receivers.

    from commbox_async.webhooks import parse_event, WebhookRouter, ObjectNewChild

Receivers: :func:`commbox_async.webhooks.starlette.webhook_app` (FastAPI/Starlette) and
:func:`commbox_async.webhooks.aiohttp.add_webhook_routes`.
"""

from ._parse import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    WebhookParseError,
    WebhookTooLargeError,
    parse_event,
)
from ._receiver import DEFAULT_BODY_TIMEOUT, TRIGGERS, ReceiverConfig, SecretRedactingFilter
from .events import *  # noqa: F403 - the event classes are this package's API
from .events import __all__ as _events_all
from .router import WebhookRouter

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "TRIGGERS",
    "ReceiverConfig",
    "SecretRedactingFilter",
    "WebhookParseError",
    "WebhookRouter",
    "WebhookTooLargeError",
    "parse_event",
    *_events_all,
]
