"""What each kind of send leaves behind at CommBox, and how to find it again.

A send whose answer was lost is ``uncertain``; :mod:`._reconcile` settles it by looking for what
it would have created. This module says, per payload, where to look and what to compare:

- a new conversation (``NewObject``): stream search (``GET /streams/{STREAM_ID}/objects``), by
  the recipient's identity or by time range; compared on ``userStreamProviderId``, the text
  (``message``) and ``createdTime``;
- a message in a conversation (``NewChild``): Get Object with its children; compared on the
  child's direction (``isManager``: the agent's or the customer's), for an agent's message its
  author (the ``UserIdentity`` sent, against the child's ``user.id`` / ``managerId``), the
  text and ``createdTime``;
- a WhatsApp v2 template with ``object_data``: it creates a conversation ("Sending any templated
  WhatsApp message with Object data also creates a conversation", the spec of
  ``POST /v2/whatsapp/sendtemplatedmessage``), but its text is the template as WhatsApp
  renders it, so only the stamp can tell it apart;
- ``/sms/sendsms`` and a template without ``object_data``: nothing CommBox lets a client list.

With ``stamp=True`` the message's key is written into a field CommBox stores and returns (the
conversation's or the child's ``Content``; a template's ``object_data.Content``), under
:data:`STAMP_FIELD`, with a random id of the send under :data:`STAMP_SEND_FIELD` (kept in the
journal's lookup): a conversation carrying both is that send, whatever its text.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import unicodedata
from typing import Any, Literal

import attrs

from ..models import NewChild, NewObject, ObjectContent, TemplateMessage, TemplateObjectData
from ._types import BulkMessage, SmsMessage

__all__ = [
    "STAMP_FIELD",
    "STAMP_SEND_FIELD",
    "Lookup",
    "TextFit",
    "lookup_for",
    "normalize_text",
    "normalize_who",
    "stamped",
    "text_fit",
]

#: The key ``stamp=True`` adds to a conversation's (or child's) ``Content`` JSON.
STAMP_FIELD = "commbox_async_key"
#: Beside the key, a random id of the send (32 hex digits) that the journal keeps: a key is
#: unique within one journal only, and another journal's send of the same key is not this one.
STAMP_SEND_FIELD = "commbox_async_send"

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
    #: With ``stamp``: the random id written beside the key (:data:`STAMP_SEND_FIELD`).
    send: str | None = None
    #: A message in a conversation: whether it is the agent's (``IsManager``), and the agent
    #: sending it (``UserIdentity``).
    manager: bool | None = None
    author: int | None = None
    #: For ``kind="none"`` (or a template without a stamp): why it cannot be looked up.
    why_not: str | None = None

    def to_json(self) -> str:
        """The fields that differ from their defaults, as JSON (``manager=False`` is kept)."""
        return json.dumps(
            {
                name: value
                for name, default in _LOOKUP_DEFAULTS
                if (value := getattr(self, name)) != default
            }
        )

    @classmethod
    def from_json(cls, text: str | None) -> Lookup | None:
        if not text:
            return None
        try:
            fields: dict[str, Any] = json.loads(text)
            return cls(**fields)
        except (ValueError, TypeError, RecursionError):  # not what a bulk send wrote
            return None


_LOOKUP_DEFAULTS = tuple((a.name, a.default) for a in attrs.fields(Lookup))


def lookup_for(message: BulkMessage, *, stamp: bool) -> Lookup:
    """How to find again what ``message`` would create; with ``stamp``, a fresh send id for
    :func:`stamped` to write."""
    payload = message.payload
    stream = str(message.stream_id)
    send = secrets.token_hex(16) if stamp else None
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
            send=send,
        )
    if isinstance(payload, NewChild):
        return Lookup(
            kind="child",
            stream=stream,
            object_id=str(message.object_id),
            text=normalize_text(payload.message),
            stamp=stamp,
            send=send,
            manager=bool(payload.is_manager),
            author=payload.user_identity if payload.is_manager else None,
        )
    if isinstance(payload, TemplateMessage):
        if payload.object_data is None:
            return Lookup(kind="none", stream=stream, why_not=NO_LOOKUP_TEMPLATE)
        return Lookup(
            kind="object",
            stream=stream,
            who=payload.to,
            stamp=stamp,
            send=send,
            why_not=None if stamp else NO_STAMP_TEMPLATE,
        )
    assert isinstance(payload, SmsMessage)
    return Lookup(kind="none", stream=stream, why_not=NO_LOOKUP_SMS)


def stamped(message: BulkMessage, lookup: Lookup) -> BulkMessage:
    """``message`` with its key and ``lookup``'s send id in the ``Content`` CommBox stores (see
    :data:`STAMP_FIELD`); a payload with nowhere to put them (``/sms/sendsms``) is returned as
    it is."""
    payload = message.payload
    mark = {STAMP_FIELD: message.key}
    if lookup.send is not None:
        mark[STAMP_SEND_FIELD] = lookup.send
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
#: Characters of a text normalized (and so compared); a longer one is cut there.
TEXT_LIMIT = 100_000
#: Entity decodings applied at most: a text escaped twice (``&amp;lt;``) is read as the text.
_DECODINGS = 4
#: Ends a text that was cut, or whose entities did not all decode within ``_DECODINGS``: an
#: entity a decoded text cannot hold (decoding would turn it into "…"), so such a text is
#: never certainly equal to another, nor certainly different.
_UNSETTLED = "&hellip;"

TextFit = Literal["same", "maybe", "different"]


def normalize_text(value: str | None) -> str | None:
    """A message's text as compared: CommBox may store it as HTML (the spec's example:
    ``>Hi!&nbsp;<br><br>How are you today?``), so entities are decoded first (repeatedly: a
    text escaped twice is the text), then line breaks (``<br>``) read as text, whitespace
    collapsed and Unicode put in NFC. Tags stay: dropping them can make two texts equal (see
    :func:`text_fit`). Every form of a text the docs show CommBox storing normalizes the same.
    """
    if value is None:
        return None
    text, settled = value[:TEXT_LIMIT], len(value) <= TEXT_LIMIT
    for _ in range(_DECODINGS):
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    else:
        settled = settled and html.unescape(text) == text
    text = _BREAK.sub("\n", text)
    text = unicodedata.normalize("NFC", _SPACE.sub(" ", text)).strip()
    return text if settled else text + _UNSETTLED


def text_fit(sent: str | None, stored: str | None) -> TextFit:
    """How a normalized stored text compares with a normalized sent one: ``same``; ``maybe``
    when nothing tells (either is unknown, cut or not fully decoded, or they are equal only
    once tags are dropped: CommBox may add markup, but "Reply <STOP>" is not "Reply");
    otherwise ``different``."""
    if sent is None or stored is None:
        return "maybe"
    settled = not sent.endswith(_UNSETTLED) and not stored.endswith(_UNSETTLED)
    if sent == stored:
        return "same" if settled else "maybe"
    if not settled or _untagged(sent) == _untagged(stored):
        return "maybe"
    return "different"


def _untagged(text: str) -> str:
    # Markup may join or split words ("<p>a</p><p>b</p>" for "a b"): the loosest reading.
    return _SPACE.sub("", _TAG.sub("", text))


def normalize_who(value: str | int | None) -> str | None:
    """A recipient as compared: trimmed, a phone number's leading ``+`` dropped, lower case."""
    if value is None:
        return None
    return str(value).strip().lstrip("+").lower()
