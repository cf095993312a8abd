"""What both receivers share: secret check, size limit, parsing, and the answer."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import attrs

from ._parse import DEFAULT_MAX_BYTES, WebhookParseError, WebhookTooLargeError, parse_event
from .events import Event

__all__ = ["ReceiverConfig", "TRIGGERS", "Verdict", "check"]

#: One route per trigger: "/object/onnewchild" -> ("Object", "OnNewChild").
TRIGGERS: dict[str, tuple[str, str]] = {
    f"{sub.lower()}/{name.lower()}": (sub, name)
    for sub, names in {
        "Object": ("OnNew", "OnNewChild", "OnNewActivity", "OnUpdateTag", "OnAssign", "OnUnAssign"),
        "User": ("OnNew", "OnUpdate", "OnUpdateTag", "Login", "Logout"),
        "Satisfaction": ("OnSubmit",),
        "Tag": ("OnAdd", "OnUpdate", "OnDelete", "OnAddGroup", "OnUpdateGroup", "OnDeleteGroup"),
        "Form": ("OnSubmit",),
        "Chat": ("OnUserExit",),
    }.items()
    for name in names
}


@attrs.frozen(kw_only=True)
class ReceiverConfig:
    """``secret``: compared in constant time with the ``secret_param`` query parameter or the
    ``secret_header`` header; ``max_bytes``: the body limit (413 above it); ``background``:
    answer 200 first and run the handlers afterwards (otherwise 200 only after they succeed)."""

    secret: str | None = None
    secret_param: str = "secret"  # noqa: S105 - a parameter name, not a secret
    secret_header: str = "X-CommBox-Secret"  # noqa: S105 - a header name
    max_bytes: int = DEFAULT_MAX_BYTES
    background: bool = False


@attrs.frozen
class Verdict:
    status: int
    message: str
    event: Event | None = None


def secret_ok(config: ReceiverConfig, query: Mapping[str, str], headers: Mapping[str, str]) -> bool:
    if config.secret is None:
        return True
    given = query.get(config.secret_param) or headers.get(config.secret_header.lower()) or ""
    return hmac.compare_digest(given.encode(), config.secret.encode())


def check(
    config: ReceiverConfig,
    body: bytes,
    *,
    content_type: str | None,
    trigger: str | None,
) -> Verdict:
    """Parse a body for a route; the status a receiver should answer with if it is not 200."""
    kind = TRIGGERS.get(trigger.lower()) if trigger else None
    if trigger and kind is None:
        return Verdict(404, f"no CommBox trigger {trigger!r}")
    try:
        event = parse_event(
            body,
            content_type=content_type,
            subscription=kind[0] if kind else None,
            name=kind[1] if kind else None,
            max_bytes=config.max_bytes,
        )
    except WebhookTooLargeError as exc:
        return Verdict(413, str(exc))
    except WebhookParseError as exc:
        return Verdict(400, str(exc))
    return Verdict(200, "ok", event)
