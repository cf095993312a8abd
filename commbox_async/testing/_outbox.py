"""The fake's outbox as CommBox would send it: webhook bodies in JSON or XML, dispatched into a
router or POSTed to a callback URL."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

import httpx

from ..webhooks import parse_event

#: Webhook fields whose value is text (JSON for a structure), not attributes or elements.
_TEXT_FIELDS = ("Message", "Content", "Data", "Snippet")


def _fill(element: Element, value: Mapping[str, Any]) -> None:
    for key, item in value.items():
        if key in _TEXT_FIELDS:
            SubElement(element, key).text = item if isinstance(item, str) else json.dumps(item)
        elif isinstance(item, Mapping):
            _fill(SubElement(element, key), item)
        elif isinstance(item, list):
            for entry in item:
                if isinstance(entry, Mapping):
                    _fill(SubElement(element, key), entry)
        elif item is not None:
            element.set(key, str(item))


def event_xml(subscription: str, name: str, payload: Mapping[str, Any]) -> bytes:
    """The XML form of an outbox event, as the Developer Guide's webhook examples show it."""
    root = Element("Event", Subscription=subscription, Name=name, Brand="fake")
    _fill(SubElement(root, subscription), payload)
    return tostring(root)


def webhook_bodies(
    outbox: Sequence[Mapping[str, Any]], *, format: str
) -> list[tuple[str, str, bytes]]:
    """(subscription, name, body) for each event, in CommBox's JSON form (``{"payload": ...}``)
    or XML form (``<Event Subscription= Name= Brand=>``)."""
    out = []
    for event in outbox:
        sub, name, payload = event["subscription"], event["name"], event["payload"]
        if format == "json":
            body = json.dumps({"payload": payload}).encode()
        elif format == "xml":
            body = event_xml(sub, name, payload)
        else:
            raise ValueError(f"format must be 'json' or 'xml', got {format!r}")
        out.append((sub, name, body))
    return out


async def deliver(outbox: list[dict[str, Any]], router: Any, *, format: str, clear: bool) -> int:
    """Parse every event as CommBox would send it and dispatch it into ``router``."""
    bodies = webhook_bodies(outbox, format=format)
    for sub, name, body in bodies:
        await router.dispatch(parse_event(body, subscription=sub, name=name))
    if clear:
        outbox.clear()
    return len(bodies)


async def deliver_to(
    outbox: list[dict[str, Any]],
    url: str,
    *,
    format: str,
    clear: bool,
    transport: httpx.AsyncBaseTransport | None,
) -> list[int]:
    """POST every event to ``{url}/{subscription}/{name}`` (lower-cased); return the statuses."""
    statuses = []
    ctype = "application/json" if format == "json" else "application/xml"
    async with httpx.AsyncClient(transport=transport) as http:
        for sub, name, body in webhook_bodies(outbox, format=format):
            response = await http.post(
                f"{url.rstrip('/')}/{sub.lower()}/{name.lower()}",
                content=body,
                headers={"content-type": ctype},
            )
            statuses.append(response.status_code)
    if clear:
        outbox.clear()
    return statuses
