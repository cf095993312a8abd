"""What each kind of send leaves behind at CommBox, and how to find it again.

A send whose answer was lost is ``uncertain``; :mod:`._reconcile` settles it by looking for what
it would have created. This module says, per payload, where to look and what to compare:

- a new conversation (``NewObject``): stream search (``GET /streams/{STREAM_ID}/objects``), by
  the recipient's identity or by time range; compared on ``userStreamProviderId``, the text
  (``message``) and ``createdTime``;
- a message in a conversation (``NewChild``): Get Object with its children; compared on the
  child's text and ``createdTime``;
- a WhatsApp v2 template with ``object_data``: it creates a conversation ("Sending any templated
  WhatsApp message with Object data also creates a conversation", the spec of
  ``POST /v2/whatsapp/sendtemplatedmessage``), but its text is the template as WhatsApp
  renders it, so only the stamp can tell it apart;
- ``/sms/sendsms`` and a template without ``object_data``: nothing CommBox lets a client list.

With ``stamp=True`` the message's key is written into a field CommBox stores and returns (the
conversation's or the child's ``Content``; a template's ``object_data.Content``), under
:data:`STAMP_FIELD`: a conversation then matches by key alone.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from typing import Any, Literal

import attrs

from ..models import NewChild, NewObject, ObjectContent, TemplateMessage, TemplateObjectData
from ._types import BulkMessage, SmsMessage

__all__ = ["STAMP_FIELD", "Lookup", "lookup_for", "normalize_text", "normalize_who", "stamped"]

#: The key ``stamp=True`` adds to a conversation's (or child's) ``Content`` JSON.
STAMP_FIELD = "commbox_async_key"

LookupKind = Literal["object", "child", "none"]

#: Why a send cannot be looked up, with the spec's evidence.
NO_LOOKUP_SMS = (
    "CommBox offers no way to look up a text sent with POST /sms/sendsms: it answers no id "
    '(its 200 response\'s data is the string "") and creates no conversation the API can list'
)
NO_LOOKUP_TEMPLATE = (
    "a WhatsApp v2 template sent without object_data creates no conversation (the spec: "
    '"Sending any templated WhatsApp message with Object data also creates a conversation"), '
    "so CommBox offers nothing to look it up by"
)
NO_STAMP_TEMPLATE = (
    "a WhatsApp template's conversation carries the template as WhatsApp renders it, not a text "
    "this library knows: only a stamp (send with stamp=True) can tell which one it is"
)


@attrs.frozen(kw_only=True)
class Lookup:
    """Where a send's result would be, and what identifies it."""

    kind: LookupKind
    stream: str = ""
    object_id: str | None = None
    #: The recipient as it was sent (``userStreamProviderId``; compared normalized) and its
    #: provider type.
    who: str | None = None
    who_type: int | None = None
    text: str | None = None
    stamp: bool = False
    #: For ``kind="none"`` (or a template without a stamp): why it cannot be looked up.
    why_not: str | None = None

    def to_json(self) -> str:
        fields = attrs.asdict(self)
        return json.dumps({k: v for k, v in fields.items() if v not in (None, False, "")})

    @classmethod
    def from_json(cls, text: str | None) -> Lookup | None:
        if not text:
            return None
        try:
            fields: dict[str, Any] = json.loads(text)
            return cls(**fields)
        except (ValueError, TypeError, RecursionError):  # not what a bulk send wrote
            return None


def lookup_for(message: BulkMessage, *, stamp: bool) -> Lookup:
    """How to find again what ``message`` would create."""
    payload = message.payload
    stream = str(message.stream_id)
    if isinstance(payload, NewObject):
        return Lookup(
            kind="object",
            stream=stream,
            who=payload.user_stream_provider_id,
            who_type=None
            if payload.user_stream_provider_type is None
            else int(payload.user_stream_provider_type),
            text=normalize_text(payload.message),
            stamp=stamp,
        )
    if isinstance(payload, NewChild):
        return Lookup(
            kind="child",
            stream=stream,
            object_id=str(message.object_id),
            text=normalize_text(payload.message),
            stamp=stamp,
        )
    if isinstance(payload, TemplateMessage):
        if payload.object_data is None:
            return Lookup(kind="none", stream=stream, why_not=NO_LOOKUP_TEMPLATE)
        return Lookup(
            kind="object",
            stream=stream,
            who=payload.to,
            stamp=stamp,
            why_not=None if stamp else NO_STAMP_TEMPLATE,
        )
    assert isinstance(payload, SmsMessage)
    return Lookup(kind="none", stream=stream, why_not=NO_LOOKUP_SMS)


def stamped(message: BulkMessage) -> BulkMessage:
    """``message`` with its key in the ``Content`` CommBox stores (see :data:`STAMP_FIELD`);
    a payload with nowhere to put it (``/sms/sendsms``) is returned as it is."""
    payload = message.payload
    mark = {STAMP_FIELD: message.key}
    if isinstance(payload, NewObject):
        content = payload.content or ObjectContent()
        content = attrs.evolve(content, extra={**content.extra, **mark})
        return attrs.evolve(message, payload=attrs.evolve(payload, content=content))
    if isinstance(payload, NewChild):
        child = attrs.evolve(payload, content={**(payload.content or {}), **mark})
        return attrs.evolve(message, payload=child)
    if isinstance(payload, TemplateMessage) and payload.object_data is not None:
        data: TemplateObjectData = payload.object_data
        before = data.content if isinstance(data.content, dict) else {}
        data = attrs.evolve(data, content={**before, **mark})
        return attrs.evolve(message, payload=attrs.evolve(payload, object_data=data))
    return message


_TAG = re.compile(r"<[^<>]{0,2000}>")
_BREAK = re.compile(r"<\s{0,10}br\s{0,10}/?\s{0,10}>", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def normalize_text(value: str | None) -> str | None:
    """A message's text as compared: CommBox may store HTML (``<br>``, ``&nbsp;``, tags), so
    line breaks and entities are read as text, other tags dropped, whitespace collapsed and
    Unicode put in NFC."""
    if value is None:
        return None
    text = _BREAK.sub("\n", value[:100_000])
    text = html.unescape(_TAG.sub("", text))
    return unicodedata.normalize("NFC", _SPACE.sub(" ", text)).strip()


def normalize_who(value: str | int | None) -> str | None:
    """A recipient as compared: trimmed, a phone number's leading ``+`` dropped, lower case."""
    if value is None:
        return None
    return str(value).strip().lstrip("+").lower()
