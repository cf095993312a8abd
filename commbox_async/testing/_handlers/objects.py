"""Conversations (objects) and their messages (children), status, content, activity log,
remarks, indicators, tags and stream."""

from __future__ import annotations

import json
from typing import Any

from ...models import ObjectActivityType, ObjectStatusType
from .._state import Conversation, FakeState
from .._wire import BASE_URL, HTTPError, now
from ._common import (
    Multipart,
    P,
    Q,
    Result,
    Routes,
    data,
    flag,
    get,
    get_or,
    known,
    message,
    text_body,
)

_KNOWN_STATUSES = frozenset(int(s) for s in ObjectStatusType)


def _object_fields(body: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A new conversation's fields and attachments, from a JSON or a multipart body."""
    if not isinstance(body, Multipart):
        return data(body), []
    try:
        fields = json.loads(body.fields.get("data", ""))
    except ValueError:
        raise HTTPError(400, "Bad Request: the data field is not JSON") from None
    if not isinstance(fields, dict):
        raise HTTPError(400, "Bad Request: the data field is not an object")
    return fields, body.files


def _new_record(
    state: FakeState, stream: str, object_id: int, fields: dict[str, Any], text: str
) -> dict[str, Any]:
    user = get_or(fields, "User", {})
    manager_id = get_or(fields, "ManagerId", 0)
    created = now()
    return {
        "objectId": object_id,
        "streamid": state.stream_number(stream),
        "substreamid": get_or(fields, "SubStreamId", 0),
        "streamProviderId": str(get_or(fields, "StreamProviderId", "")),
        "streamProviderType": get_or(fields, "StreamProviderType", 0),
        "user_identity": get(fields, "UserIdentity") or state.new_id(),
        "firstName": user.get("FirstName", ""),
        "lastName": user.get("LastName", ""),
        "userStreamProviderId": str(get_or(fields, "UserStreamProviderId", "")),
        "userStreamProviderType": get_or(fields, "UserStreamProviderType", 0),
        "content": json.dumps(get_or(fields, "Content", {})),
        "message": text,
        "createdTime": created,
        "updatedTime": created,
        "closeTime": None,
        "statusId": int(get_or(fields, "StatusId", 1)),
        "assignedManagerId": manager_id,
        "type": get_or(fields, "Type", 4),
        "isManager": bool(manager_id),
        "user": {
            "id": state.new_id(),
            "uniqueId": user.get("UniqueId", ""),
            "phone1": user.get("Phone1", ""),
            "phone2": user.get("Phone2", ""),
            "email": user.get("Email", ""),
            "firstName": user.get("FirstName", ""),
            "lastName": user.get("LastName", ""),
            "remarks": user.get("Remarks"),
            "content": "{}",
        },
    }


def _create_object(state: FakeState, p: P, q: Q, body: Any) -> Result:
    fields, attachments = _object_fields(body)
    text = message(fields)
    state.stream_ids(p["stream"], creating=True)
    object_id = state.new_id()
    record = _new_record(state, p["stream"], object_id, fields, text)
    obj = Conversation(id=object_id, stream=p["stream"], record=record, attachments=attachments)
    obj.children.append(
        {
            "id": state.new_id(),
            "object_id": object_id,
            "content": record["content"],
            "message": text,
            "createdTime": record["createdTime"],
            "streamProviderType": record["streamProviderType"],
            "user": {
                "id": record["user"]["id"],
                "managerId": record["assignedManagerId"],
                "isManager": record["isManager"],
                "identity": {"id": record["user_identity"]},
            },
        }
    )
    state.store(obj)
    state.event(
        "Object",
        "OnNew",
        {
            "Id": str(object_id),
            "StreamId": str(record["streamid"]),
            "Message": text,
            "Type": str(record["type"]),
            "StatusID": str(record["statusId"]),
        },
    )
    return 200, {"objectId": object_id}


def _new_child(state: FakeState, obj: Conversation, fields: dict[str, Any]) -> int:
    text = message(fields)
    provider_id = get(fields, "UserStreamProviderId")
    if provider_id in (None, ""):
        raise HTTPError(400, "Bad Request: UserStreamProviderId is required")
    is_manager = bool(get(fields, "IsManager"))
    identity = get_or(fields, "UserIdentity", 0)
    if is_manager and not identity:
        raise HTTPError(400, "Bad Request: UserIdentity is required for a message from an agent")
    provider_type = get_or(fields, "UserStreamProviderType", 0)
    child_id = state.new_id()
    obj.children.append(
        {
            "id": child_id,
            "object_id": obj.id,
            "content": json.dumps(get_or(fields, "Content", {})),
            "message": text,
            "createdTime": now(),
            "streamProviderType": provider_type,
            "user": {
                "id": identity,
                "managerId": identity,
                "isManager": is_manager,
                "identity": {
                    "id": 0,
                    "streamProviderId": str(provider_id),
                    "streamProviderType": provider_type,
                },
            },
        }
    )
    obj.record["updatedTime"] = now()
    state.event(
        "Object",
        "OnNewChild",
        {
            "Id": str(obj.id),
            "StreamId": str(obj.record["streamid"]),
            "Children": {"Child": {"Id": str(child_id), "Message": text}},
        },
    )
    return child_id


def _create_child(state: FakeState, p: P, q: Q, body: Any) -> Result:
    obj = state.conversation(p["object"], p["stream"])
    return 200, {"id": _new_child(state, obj, data(body))}


def _create_child_by_provider(state: FakeState, p: P, q: Q, body: Any) -> Result:
    for object_id in reversed(state.stream_ids(p["stream"])):
        record = state.objects[object_id].record
        if (
            record["userStreamProviderId"] == p["provider_id"]
            and str(record["userStreamProviderType"]) == p["provider_type"]
        ):
            return 200, {"id": _new_child(state, state.objects[object_id], data(body))}
    raise HTTPError(
        404,
        f"No conversation for {p['provider_id']} ({p['provider_type']}) in stream {p['stream']}",
    )


def _get_object(state: FakeState, p: P, q: Q, body: Any) -> Result:
    obj = state.conversation(p["object"], p["stream"])
    newest_first = list(reversed(obj.children))
    record = dict(obj.record)
    record["user"] = dict(
        record["user"], childs=newest_first if flag(q, "includeChilds") else newest_first[:1]
    )
    if flag(q, "includeActivityLog"):
        record["activityLog"] = obj.activities
    return 200, [record]


def _activities(state: FakeState, p: P, q: Q, body: Any) -> Result:
    obj = state.conversation(p["object"])
    wanted = q.get("activityType", [""])[0]
    if not wanted.isdecimal():
        raise HTTPError(400, "Bad Request: activityType must be a number")
    return 200, [a for a in obj.activities if a["type"] == int(wanted)]


def _transcript(state: FakeState, p: P, q: Q, body: Any) -> Result:
    obj = state.conversation(p["object"], p["stream"])
    lines = []
    for c in obj.children:
        who = "Agent" if c["user"]["isManager"] else "Customer"
        lines.append(f"\\n[{c['createdTime']}] \\n{who}: \\n{c['message']}")
    text = " ".join(lines) + f" \\nCommbox Ticket Link: {BASE_URL}/widget/object/{obj.id}"
    return 200, [
        {
            "objectId": obj.id,
            "streamid": obj.record["streamid"],
            "substreamid": obj.record["substreamid"],
            "trasncript": text,
            "user": obj.record["user"],
        }
    ]


def _set_status(state: FakeState, p: P, q: Q, body: Any) -> Result:
    obj = state.conversation(p["object"])
    if not known(p["status"], _KNOWN_STATUSES):
        raise HTTPError(400, f"Bad Request: invalid status id {p['status']}")
    obj.record["statusId"] = int(p["status"])
    state.activity(obj, ObjectActivityType.STATUS_CHANGE, {"statusId": int(p["status"])})
    return 200, None


def _set_content(state: FakeState, p: P, q: Q, body: Any) -> Result:
    obj = state.conversation(p["object"])
    obj.record["content"] = json.dumps(data(body))
    return 200, None


def _activity_log(state: FakeState, p: P, q: Q, body: Any) -> Result:
    obj = state.conversation(p["object"])
    obj.activity_log.append(text_body(body))
    return 200, None


def _remarks(state: FakeState, p: P, q: Q, body: Any) -> Result:
    obj = state.conversation(p["object"])
    fields = text_body(body)
    obj.remarks.append(fields)
    state.activity(obj, ObjectActivityType.REMARK, {"text": get(fields, "Text")})
    return 200, None


def _set_indicator(state: FakeState, p: P, q: Q, body: Any) -> Result:
    obj = state.conversation(p["object"])
    fields = data(body)
    if not get(fields, "IndicatorId"):
        raise HTTPError(400, "Bad Request: IndicatorId is required")
    if not (get(fields, "DisplayClass") or get(fields, "Icon")):
        raise HTTPError(400, "Bad Request: DisplayClass or Icon is required")
    obj.indicators[str(get(fields, "IndicatorId"))] = fields
    return 200, None


def _delete_indicator(state: FakeState, p: P, q: Q, body: Any) -> Result:
    obj = state.conversation(p["object"])
    if obj.indicators.pop(p["indicator"], None) is None:
        raise HTTPError(404, f"Indicator {p['indicator']} not found")
    return 200, None


def _tag_event(state: FakeState, obj: Conversation, tag: str, action: str) -> None:
    state.event(
        "Object",
        "OnUpdateTag",
        {
            "Id": str(obj.id),
            "StreamId": str(obj.record["streamid"]),
            "Tags": {"Tag": {"Id": tag, "Action": action}},
        },
    )


def _set_tag(state: FakeState, p: P, q: Q, body: Any) -> Result:
    obj = state.conversation(p["object"], p["stream"])
    if not p["tag"].isdecimal():
        raise HTTPError(400, "Bad Request: invalid tag id")
    if int(p["tag"]) not in obj.tags:
        obj.tags.append(int(p["tag"]))
        _tag_event(state, obj, p["tag"], "Add")
    return 200, None


def _remove_tag(state: FakeState, p: P, q: Q, body: Any) -> Result:
    obj = state.conversation(p["object"], p["stream"])
    if not known(p["tag"], obj.tags):
        raise HTTPError(404, f"Tag {p['tag']} not on object {obj.id}")
    obj.tags.remove(int(p["tag"]))
    _tag_event(state, obj, p["tag"], "Remove")
    return 200, None


def _move(state: FakeState, p: P, q: Q, body: Any) -> Result:
    obj = state.conversation(p["object"])
    fields = data(body)
    target = str(get(fields, "streamId") or "")
    if not target.isdecimal():
        raise HTTPError(400, "Bad Request: streamId must be the numeric stream id")
    sub = get(fields, "subStreamId")
    if target == str(obj.record["streamid"]) and (
        sub is None or int(sub) == obj.record["substreamid"]
    ):
        return 200, ""
    state.streams[obj.stream].remove(obj.id)
    state.stream_ids(target, creating=True).append(obj.id)
    obj.stream = target
    obj.record["streamid"] = int(target)
    if sub is not None:
        obj.record["substreamid"] = int(sub)
    obj.record["updatedTime"] = now()
    return 200, {
        "streamId": int(target),
        "subStreamId": obj.record["substreamid"],
        "updatedTime": obj.record["updatedTime"],
    }


ROUTES: Routes = (
    ("POST", "/streams/{stream}/objects", _create_object),
    ("POST", "/streams/{stream}/objects/{object}/child", _create_child),
    (
        "POST",
        "/streams/{stream}/objects/{provider_id}/{provider_type}/child",
        _create_child_by_provider,
    ),
    ("GET", "/streams/{stream}/objects/{object}", _get_object),
    ("GET", "/objects/{object}/activities", _activities),
    ("GET", "/streams/{stream}/objects/{object}/transcript", _transcript),
    ("POST", "/objects/{object}/status/{status}", _set_status),
    ("POST", "/objects/{object}/content", _set_content),
    ("POST", "/objects/{object}/activitylog", _activity_log),
    ("POST", "/objects/{object}/remarks", _remarks),
    ("POST", "/objects/{object}/indicators", _set_indicator),
    ("DELETE", "/objects/{object}/indicators/{indicator}", _delete_indicator),
    ("POST", "/streams/{stream}/objects/{object}/tags/{tag}", _set_tag),
    ("DELETE", "/streams/{stream}/objects/{object}/tags/{tag}", _remove_tag),
    ("PATCH", "/objects/{object}/stream", _move),
)
