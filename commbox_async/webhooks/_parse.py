"""``parse_event``: a webhook body (XML or JSON) as a typed event.

XML is parsed with defusedxml: no DTDs, no entity expansion, no external references, and a
body size limit checked before parsing. The XML form names its own kind
(``<Event Subscription=".." Name=".." Brand="..">``). The JSON form is only ``{"payload": ...}``:
its kind comes from the caller (the receiver knows which trigger a callback URL is for) or is
inferred from the payload's shape by these rules, first match wins:

- ``Activities`` -> Object OnNewActivity
- ``Tags`` with an object ``StreamId`` -> Object OnUpdateTag; ``Tags`` otherwise -> User OnUpdateTag
- ``eventName`` -> Tag ``<eventName>``; only ``groupId`` -> Tag OnDeleteGroup
- ``Score`` -> Satisfaction OnSubmit; ``FormUrl`` -> Form OnSubmit
- ``User`` and ``Object`` holding only ids -> Chat OnUserExit
- ``StreamId`` with a ``Message`` -> :class:`AmbiguousObjectEvent` (OnNew or OnNewChild)
- ``StreamId`` alone -> :class:`AmbiguousObjectEvent` (OnAssign or OnUnAssign)
- user fields (``Email``, ``Phone1``, ``UniqueID``...) -> :class:`AmbiguousUserEvent`
- anything else -> :class:`UnknownEvent`
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from typing import Any
from xml.etree.ElementTree import Element, TreeBuilder

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from .._exceptions import CommBoxError, DecodeError
from .._json import DEFAULT_MAX_DEPTH, JSONLimitError, MaxDepth, loads
from ..models import ObjectActivityType, ObjectRecord, Tag, User, structure
from ..models._converter import parse_datetime, to_bool, to_int, to_json_object, to_str
from ..models._enums import coerce_enum
from .events import (
    ACTIVITY_DATA,
    AmbiguousObjectEvent,
    AmbiguousUserEvent,
    ChatUserExit,
    Event,
    FormSubmit,
    ObjectAssign,
    ObjectEvent,
    ObjectNew,
    ObjectNewActivity,
    ObjectNewChild,
    ObjectUnAssign,
    ObjectUpdateTag,
    SatisfactionSubmit,
    TagAdd,
    TagDelete,
    TagEvent,
    TagGroupAdd,
    TagGroupDelete,
    TagGroupUpdate,
    TagUpdate,
    UnknownEvent,
    UserEvent,
    UserLogin,
    UserLogout,
    UserNew,
    UserUpdate,
    UserUpdateTag,
    WebhookActivity,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "WebhookParseError",
    "WebhookTooLargeError",
    "parse_event",
]

DEFAULT_MAX_BYTES = 1024 * 1024


class WebhookParseError(CommBoxError, ValueError):
    """The body is not a well-formed CommBox webhook (not XML/JSON, wrong root, truncated,
    or an XML document with a DTD or entities)."""


class WebhookTooLargeError(WebhookParseError):
    """The body is larger than the configured limit."""


def parse_event(
    body: bytes | str,
    *,
    content_type: str | None = None,
    subscription: str | None = None,
    name: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Event:
    """Parse one webhook body into a typed, frozen event.

    The format comes from ``content_type`` (``.../xml`` or ``.../json``) or, when absent, from
    the body's first character. ``subscription`` and ``name`` say which trigger the body came
    from (needed to tell some JSON kinds apart; an XML body names its own).

    Limits: ``max_bytes`` (1 MiB) for the body, ``max_depth`` (256) levels of XML elements or
    JSON arrays and objects, in the body and in JSON sent inside its string fields. What breaks
    a limit, or is not text (a lone surrogate), or holds a number too long for ``int`` or a
    date with no UTC equivalent, raises :class:`WebhookParseError`, in time linear in the
    body's size.
    """
    if isinstance(body, str):
        try:
            data = body.encode("utf-8")
        except UnicodeEncodeError:
            raise WebhookParseError("webhook body holds a lone UTF-16 surrogate") from None
    else:
        data = bytes(body)
    if len(data) > max_bytes:
        raise WebhookTooLargeError(
            f"webhook body of {len(data)} bytes exceeds the limit of {max_bytes}"
        )
    kind = (content_type or "").lower()
    if "xml" in kind:
        is_xml = True
    elif "json" in kind:
        is_xml = False
    else:
        is_xml = _looks_like_xml(data)
    with MaxDepth(max_depth):
        if is_xml:
            return _parse_xml(data, subscription=subscription, name=name, max_depth=max_depth)
        return _parse_json(data, subscription=subscription, name=name, max_depth=max_depth)


# -- XML -------------------------------------------------------------------------------------

# Byte-order marks an XML writer may put first (.NET's does): the document starts after them.
_UTF16_XML_STARTS = (b"\xff\xfe<\x00", b"\xfe\xff\x00<")


def _looks_like_xml(data: bytes) -> bool:
    if data.startswith(_UTF16_XML_STARTS):
        return True
    return data.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"<"


# Damage the documentation tool did to the published examples, repaired only when the body
# does not parse as it is: "</User />" closing tags, and a start tag missing its ">".
_REPAIRS = (
    (re.compile(rb"</(\w+)\s*/>"), rb"</\1>"),
    (re.compile(rb"<(\w+)(\s*)(?=<)"), rb"<\1>\2"),
)


class _TooDeep(Exception):
    pass


class _DepthLimitedBuilder(TreeBuilder):
    """A tree builder that refuses an element nested deeper than ``limit`` as it arrives, so a
    100,000-deep document is refused at its 257th start tag rather than built first."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit
        self._depth = 0

    def start(self, tag: Any, attrs: Any) -> Element:
        self._depth += 1
        if self._depth > self._limit:
            raise _TooDeep
        return super().start(tag, attrs)

    def end(self, tag: Any) -> Element:
        self._depth -= 1
        return super().end(tag)


def _fromstring(data: bytes, max_depth: int) -> Element:
    if data.count(b"<") <= max_depth:  # each level needs a "<": the usual body cannot be deep
        root: Element = SafeET.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
        return root
    parser = DefusedXMLParser(
        target=_DepthLimitedBuilder(max_depth),
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    parser.feed(data)
    return parser.close()  # type: ignore[no-any-return]


def _parse_once(data: bytes, max_depth: int) -> Element:
    """``data`` as an element tree, or the typed refusal; a syntax error is let through for
    the caller to try the repairs."""
    try:
        return _fromstring(data, max_depth)
    except _TooDeep:
        raise WebhookParseError(
            f"refused XML webhook: elements nested deeper than the limit of {max_depth}"
        ) from None
    except DefusedXmlException as exc:
        raise WebhookParseError(
            f"refused XML webhook: {type(exc).__name__} (DTDs and entities are not allowed)"
        ) from None
    except (LookupError, ValueError) as exc:
        # The declaration names an encoding expat cannot read: one Python does not know
        # ("x-unknown", "EBCDIC"; LookupError), a multi-byte one ("utf-32", "shift_jis";
        # ValueError) or a codec that fails on the bytes ("idna", "punycode"; UnicodeError).
        reason = str(exc)
        if len(reason) > 120:
            reason = reason[:120] + "..."
        raise WebhookParseError(
            f"refused XML webhook: its declared encoding cannot be read ({reason})"
        ) from None


def _parse_xml(data: bytes, *, subscription: str | None, name: str | None, max_depth: int) -> Event:
    try:
        root = _parse_once(data, max_depth)
    except SafeET.ParseError as first:
        repaired = data
        for pattern, replacement in _REPAIRS:
            repaired = pattern.sub(replacement, repaired)
        try:
            root = _parse_once(repaired, max_depth)
        except SafeET.ParseError:
            raise WebhookParseError(f"malformed XML webhook: {first}") from None
    if _local(root.tag) != "Event":
        raise WebhookParseError(f"XML webhook root must be <Event>, got <{_local(root.tag)}>")
    attrs = {_local(k).lower(): v for k, v in root.attrib.items()}
    sub = attrs.get("subscription") or subscription
    event_name = attrs.get("name") or name
    brand = attrs.get("brand")
    children = list(root)
    try:
        payload = _element_to_dict(children[0]) if children else {}
    except RecursionError:  # only with a max_depth beyond what the interpreter can nest
        raise WebhookParseError("refused XML webhook: elements nested too deep") from None
    if not isinstance(payload, dict):
        payload = {"value": payload}
    body_tag = _local(children[0].tag) if children else None
    raw = {body_tag: payload} if body_tag else {}
    if sub is None or event_name is None:
        return UnknownEvent(subscription=sub or "", name=event_name or "", brand=brand, raw=raw)
    return _build(sub, event_name, payload, brand=brand, raw=raw, xml_tag=body_tag)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _element_to_dict(element: Element) -> Any:
    """Attributes and child elements as one dict; repeated children become a list; a leaf with
    no attributes is its text."""
    kids = list(element)
    if not kids and not element.attrib:
        return (element.text or "").strip()
    result: dict[str, Any] = {_local(k): v for k, v in element.attrib.items()}
    for kid in kids:
        key = _local(kid.tag)
        value = _element_to_dict(kid)
        if key in result:
            # A child never converts to a list by itself, so a list here is one we built.
            existing = result[key]
            if isinstance(existing, list):
                existing.append(value)
            else:
                result[key] = [existing, value]
        else:
            result[key] = value
    text = (element.text or "").strip()
    if text and "#text" not in result:
        result["#text"] = text
    return result


# -- JSON ------------------------------------------------------------------------------------


def _parse_json(
    data: bytes, *, subscription: str | None, name: str | None, max_depth: int
) -> Event:
    try:
        decoded = loads(data, max_depth=max_depth)
    except JSONLimitError as exc:
        raise WebhookParseError(f"refused JSON webhook: {exc}") from None
    except ValueError as exc:
        raise WebhookParseError(f"malformed JSON webhook: {exc}") from None
    if not isinstance(decoded, dict):
        raise WebhookParseError(f"a JSON webhook must be an object, got {type(decoded).__name__}")
    payload = (
        decoded.get("payload", decoded) if len(decoded) == 1 or "payload" in decoded else decoded
    )
    if not isinstance(payload, dict):
        raise WebhookParseError(f'"payload" must be an object, got {type(payload).__name__}')
    if subscription is None or name is None:
        inferred_sub, inferred_name = _infer(payload)
        subscription = subscription or inferred_sub
        name = name or inferred_name
    return _build(subscription, name, payload, brand=None, raw=decoded, xml_tag=None)


_USER_KEYS = {
    "email",
    "phone1",
    "phone2",
    "uniqueid",
    "firstname",
    "lastname",
    "numidentities",
    "locale",
}


def _infer(payload: Mapping[str, Any]) -> tuple[str, str]:
    keys = {k.lower() for k in payload}
    if "activities" in keys:
        return "Object", "OnNewActivity"
    if "tags" in keys:
        return ("Object", "OnUpdateTag") if "streamid" in keys else ("User", "OnUpdateTag")
    if "eventname" in keys:
        return "Tag", str(_get(payload, "eventName"))
    if keys == {"groupid"}:
        return "Tag", "OnDeleteGroup"
    if "score" in keys:
        return "Satisfaction", "OnSubmit"
    if "formurl" in keys:
        return "Form", "OnSubmit"
    if keys == {"user", "object"}:
        return "Chat", "OnUserExit"
    if "streamid" in keys:
        return "Object", "OnNew|OnNewChild" if "message" in keys else "OnAssign|OnUnAssign"
    if keys & _USER_KEYS:
        return "User", "OnNew|OnUpdate|Login|Logout"
    return "", ""


def _get(payload: Any, key: str) -> Any:
    """A key in any casing; None when absent or when ``payload`` is not an object."""
    if not isinstance(payload, Mapping):
        return None
    lowered = key.lower()
    for k, v in payload.items():
        if k.lower() == lowered:
            return v
    return None


def _opt(fn: Callable[[Any], Any], value: Any) -> Any:
    if value is None or value == "":
        return None
    return fn(value)


# -- building events -------------------------------------------------------------------------

_OBJECT_EVENTS: dict[str, type[ObjectEvent]] = {
    "onnew": ObjectNew,
    "onnewchild": ObjectNewChild,
    "onnewactivity": ObjectNewActivity,
    "onupdatetag": ObjectUpdateTag,
    "onassign": ObjectAssign,
    "onunassign": ObjectUnAssign,
}
_USER_EVENTS: dict[str, type[UserEvent]] = {
    "onnew": UserNew,
    "onupdate": UserUpdate,
    "onupdatetag": UserUpdateTag,
    "login": UserLogin,
    "logout": UserLogout,
}
_TAG_EVENTS: dict[str, type[TagEvent]] = {
    "onadd": TagAdd,
    "onupdate": TagUpdate,
    "ondelete": TagDelete,
    "onaddgroup": TagGroupAdd,
    "onupdategroup": TagGroupUpdate,
    "ondeletegroup": TagGroupDelete,
}


def _build(
    subscription: str,
    name: str,
    payload: dict[str, Any],
    *,
    brand: str | None,
    raw: Mapping[str, Any],
    xml_tag: str | None,
) -> Event:
    common: dict[str, Any] = {
        "subscription": subscription,
        "name": name,
        "brand": brand,
        "raw": raw,
    }
    builder = _BUILDERS.get(subscription.lower())
    try:
        event = builder(name, name.lower(), payload, common, xml_tag) if builder else None
    except DecodeError as exc:
        raise WebhookParseError(f"{subscription} {name} webhook: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise WebhookParseError(f"{subscription} {name} webhook: {exc}") from None
    return event if event is not None else UnknownEvent(**common)


# Each subscription's events from the payload, or None for a name it does not know. Arguments:
# the event name as sent and lower-cased, the payload, the fields every event has, and the
# XML body's tag (None for JSON).


def _object_event(
    name: str, key: str, payload: dict[str, Any], common: dict[str, Any], xml_tag: str | None
) -> Event | None:
    if "|" in name:
        return AmbiguousObjectEvent(
            object=structure(payload, ObjectRecord), candidates=tuple(name.split("|")), **common
        )
    cls = _OBJECT_EVENTS.get(key)
    if cls is None:
        return None
    record = structure(
        {k: v for k, v in payload.items() if k.lower() not in ("activities", "tags")},
        ObjectRecord,
    )
    if cls is ObjectNewActivity:
        return ObjectNewActivity(
            object=record, activities=_activities(_get(payload, "Activities")), **common
        )
    if cls is ObjectUpdateTag:
        return ObjectUpdateTag(
            object=record, tags=structure(_get(payload, "Tags"), tuple[Tag, ...]), **common
        )
    return cls(object=record, **common)


def _user_event(
    name: str, key: str, payload: dict[str, Any], common: dict[str, Any], xml_tag: str | None
) -> Event | None:
    nested = _get(payload, "User")
    user_payload = nested if xml_tag is None and isinstance(nested, Mapping) else payload
    tags = (
        structure(_get(user_payload, "Tags"), tuple[Tag, ...]) if _get(user_payload, "Tags") else ()
    )
    user = structure({k: v for k, v in user_payload.items() if k.lower() != "tags"}, User)
    if "|" in name:
        return AmbiguousUserEvent(user=user, tags=tags, candidates=tuple(name.split("|")), **common)
    ucls = _USER_EVENTS.get(key)
    return ucls(user=user, tags=tags, **common) if ucls else None


def _satisfaction_event(
    name: str, key: str, payload: dict[str, Any], common: dict[str, Any], xml_tag: str | None
) -> Event | None:
    if key != "onsubmit":
        return None
    return SatisfactionSubmit(
        object_id=_opt(to_int, _get(payload, "ObjectId")),
        score=_opt(to_int, _get(payload, "Score")),
        description=_opt(to_str, _get(payload, "Description")),
        **common,
    )


def _tag_event(
    name: str, key: str, payload: dict[str, Any], common: dict[str, Any], xml_tag: str | None
) -> Event | None:
    cls = _TAG_EVENTS.get(key)
    if cls is None:
        return None
    validation = _get(payload, "unitValidation")
    return cls(
        tag_id=_opt(to_int, _get(payload, "tagId")),
        group_id=_opt(to_int, _get(payload, "groupId")),
        tag_name=_opt(to_str, _get(payload, "name")),
        is_object=_opt(to_bool, _get(payload, "isObject")),
        is_user=_opt(to_bool, _get(payload, "isUser")),
        tag_type=_opt(to_int, _get(payload, "type")),
        unit=_opt(to_int, _get(payload, "unit")),
        unit_validation_type=_opt(to_int, _get(payload, "unitValidationType")),
        unit_validation=validation if validation != "" else None,
        default_value=_opt(to_str, _get(payload, "defaultValue")),
        **common,
    )


def _form_event(
    name: str, key: str, payload: dict[str, Any], common: dict[str, Any], xml_tag: str | None
) -> Event | None:
    if key != "onsubmit":
        return None
    return FormSubmit(
        object_id=_opt(to_int, _get(payload, "ObjectId")),
        form_url=_opt(lambda v: to_str(v).strip(), _get(payload, "FormUrl")),
        properties=_opt(to_json_object, _get(payload, "Properties")),
        **common,
    )


def _chat_event(
    name: str, key: str, payload: dict[str, Any], common: dict[str, Any], xml_tag: str | None
) -> Event | None:
    if key != "onuserexit":
        return None
    return ChatUserExit(
        user_id=_opt(to_int, _get(_get(payload, "User"), "Id")),
        object_id=_opt(to_int, _get(_get(payload, "Object"), "Id")),
        **common,
    )


_Builder = Callable[[str, str, dict[str, Any], dict[str, Any], str | None], Event | None]
_BUILDERS: dict[str, _Builder] = {
    "object": _object_event,
    "user": _user_event,
    "satisfaction": _satisfaction_event,
    "tag": _tag_event,
    "form": _form_event,
    "chat": _chat_event,
}


def _activities(value: Any) -> tuple[WebhookActivity, ...]:
    if value is None:
        return ()
    if (
        isinstance(value, Mapping)
        and len(value) == 1
        and isinstance(next(iter(value.values())), (list, Mapping))
    ):
        value = next(iter(value.values()))
    items = value if isinstance(value, list) else [value]
    return tuple(_activity(item) for item in items if isinstance(item, Mapping))


def _activity(item: Mapping[str, Any]) -> WebhookActivity:
    raw_type = _get(item, "Type")
    activity_type = _opt(lambda v: coerce_enum(ObjectActivityType, v), raw_type)
    user_value = _get(item, "User")
    data_value = _get(item, "Data")
    data: Any = _opt(to_json_object, data_value) if data_value is not None else None
    cls = ACTIVITY_DATA.get(int(activity_type)) if activity_type is not None else None
    if cls is not None and isinstance(data, Mapping):
        # An activity type whose data changed shape keeps its raw data.
        with contextlib.suppress(DecodeError):
            data = structure(data, cls)
    return WebhookActivity(
        id=_opt(to_int, _get(item, "Id")),
        type=activity_type,
        created=_opt(parse_datetime, _get(item, "CreateDate") or _get(item, "CreatedTime")),
        user=structure(user_value, User) if isinstance(user_value, Mapping) else None,
        data=data,
        raw=item,
    )
