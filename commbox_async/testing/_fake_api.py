"""The fake's answers for the rest of the spec: stream search, users, managers and teams,
stats, SMS and WhatsApp, tags, forms, tickets and automation. State lives on FakeCommBox."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from ._fake import (
    BASE_URL,
    FakeCommBox,
    _data,
    _flag,
    _get,
    _HTTPError,
    _known,
    _Multipart,
    _now,
    _Object,
    route,
)

P = dict[str, str]
Q = dict[str, list[str]]
Result = tuple[int, Any]

#: The time-range form of stream search returns at most this many conversations.
TIME_RANGE_CAP = 100


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seed_conversation(
    fake: FakeCommBox,
    stream: str,
    *,
    message: str,
    created: datetime | float | None,
    children: int,
    status: int,
    user_stream_provider_id: str,
    user_identity: int | None,
) -> int:
    ids = fake._stream(stream, creating=True)
    object_id = next(fake._ids)
    if isinstance(created, datetime):
        ts = created.timestamp()
    else:
        ts = created if created is not None else datetime.now(timezone.utc).timestamp()
    when = _iso(ts)
    identity = user_identity if user_identity is not None else next(fake._ids)
    user_id = next(fake._ids)
    record: dict[str, Any] = {
        "objectId": object_id,
        "streamid": fake.stream_number(stream),
        "substreamid": 0,
        "streamProviderId": "",
        "streamProviderType": 5,
        "user_identity": identity,
        "firstName": "",
        "lastName": "",
        "userStreamProviderId": user_stream_provider_id,
        "userStreamProviderType": 5,
        "content": "{}",
        "message": message,
        "createdTime": when,
        "updatedTime": when,
        "closeTime": None,
        "statusId": status,
        "assignedManagerId": 0,
        "type": 0,
        "isManager": False,
        "user": {"id": user_id, "phone1": user_stream_provider_id, "content": "{}"},
    }
    obj = _Object(id=object_id, stream=stream, record=record, created=ts)
    fake.objects[object_id] = obj
    ids.append(object_id)
    for i in range(children):
        obj.children.append(
            {
                "id": next(fake._ids),
                "object_id": object_id,
                "content": "{}",
                "message": f"{message} #{i + 1}",
                "createdTime": when,
                "streamProviderType": 5,
                "user": {"id": user_id, "managerId": 0, "isManager": False},
            }
        )
    return object_id


def _int(q: Q, name: str) -> int | None:
    values = q.get(name)
    if not values or values[0] == "":
        return None
    try:
        return int(values[0])
    except ValueError:
        raise _HTTPError(400, f"Bad Request: {name} must be a number") from None


def _one(q: Q, name: str) -> str | None:
    values = q.get(name)
    return values[0] if values else None


def _search_record(obj: _Object, q: Q) -> dict[str, Any]:
    """A conversation as stream search returns it (``streamId``, ``substreamId``,
    ``closedTime``: the spec's spellings for this endpoint)."""
    r = obj.record
    out = {
        "objectId": r["objectId"],
        "streamId": r["streamid"],
        "substreamId": r["substreamid"],
        "streamProviderId": r["streamProviderId"],
        "streamProviderType": r["streamProviderType"],
        "user_identity": r["user_identity"],
        "userStreamProviderId": r["userStreamProviderId"],
        "userStreamProviderType": r["userStreamProviderType"],
        "content": r["content"],
        "message": r["message"],
        "createdTime": r["createdTime"],
        "updatedTime": r["updatedTime"],
        "closedTime": r["closeTime"],
        "statusId": r["statusId"],
        "assignedManagerId": r["assignedManagerId"],
        "type": r["type"],
        "isManager": r["isManager"],
        "user": r["user"],
    }
    if _flag(q, "includeChilds"):
        out["childs"] = list(reversed(obj.children))
    if _flag(q, "includeActivityLog"):
        out["activityLog"] = obj.activities
    return out


def _filtered(objects: Iterator[_Object], q: Q) -> list[_Object]:
    statuses = _one(q, "status")
    wanted = {int(s) for s in statuses.split(",") if s.strip()} if statuses else None
    sub = _int(q, "subStream")
    found = [
        o
        for o in objects
        if (wanted is None or o.record["statusId"] in wanted)
        and (sub is None or sub == 0 or o.record["substreamid"] == sub)
    ]
    # Seeded conversations are never updated, so every order the spec lists (createdtime,
    # updatedtime, ...) sorts them by creation.
    found.sort(key=lambda o: (o.created, o.id), reverse=(_one(q, "sort") or "desc") == "desc")
    return found


def _page(items: list[Any], q: Q, *, cap: int | None = None) -> list[Any]:
    size = _int(q, "pageSize") or 100
    if cap is not None:
        size = min(size, cap)
    number = _int(q, "pageNumber") or 1
    if size < 1 or number < 1:
        raise _HTTPError(400, "Bad Request: pageNumber and pageSize start at 1")
    return items[(number - 1) * size : number * size]


@route("GET", "/streams/{stream}/objects")
async def _stream_objects(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    stream = p["stream"]
    if stream not in fake.streams:
        fake._stream(stream)
    start, end = _int(q, "unixStartTime"), _int(q, "unixEndTime")
    identity = _int(q, "userIdentityId")
    provider_id = _one(q, "identityStreamProviderId")
    provider_type = _one(q, "identityStreamProviderType")
    if (start is None) != (end is None):
        raise _HTTPError(400, "Bad Request: unixStartTime and unixEndTime go together")
    if start is None and identity is None and (provider_id is None or provider_type is None):
        raise _HTTPError(
            400, "Bad Request: a time range, an identity or userIdentityId is required"
        )
    candidates = (fake.objects[i] for i in fake.streams[stream])
    if start is not None and end is not None:
        lo, hi = start, end
        candidates = (o for o in candidates if lo <= int(o.created) <= hi)
    if identity is not None:
        candidates = (o for o in candidates if o.record["user_identity"] == identity)
    if provider_id is not None:
        candidates = (
            o
            for o in candidates
            if o.record["userStreamProviderId"] == provider_id
            and str(o.record["userStreamProviderType"]) == provider_type
        )
    found = _filtered(candidates, q)
    # CommBox: "Max: 100 objects" for a time range; "additional calls are required": pages.
    cap = TIME_RANGE_CAP if start is not None else None
    return 200, [_search_record(o, q) for o in _page(found, q, cap=cap)]


@route("GET", "/streams/{stream}/streamavailability")
async def _availability(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    if _one(q, "ignoreAutomationExsistance") not in ("true", "false"):
        raise _HTTPError(400, "Bad Request: ignoreAutomationExsistance is required")
    fake._stream(p["stream"])
    return 200, {"state": 1}


@route("PATCH", "/objects/{object}/stream")
async def _move(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    obj = fake._object(p["object"])
    data = _data(body)
    target = str(_get(data, "streamId") or "")
    if not target.isdecimal():
        raise _HTTPError(400, "Bad Request: streamId must be the numeric stream id")
    sub = _get(data, "subStreamId")
    if target == str(obj.record["streamid"]) and (
        sub is None or int(sub) == obj.record["substreamid"]
    ):
        return 200, ""
    fake.streams[obj.stream].remove(obj.id)
    fake._stream(target, creating=True).append(obj.id)
    obj.stream = target
    obj.record["streamid"] = int(target)
    if sub is not None:
        obj.record["substreamid"] = int(sub)
    obj.record["updatedTime"] = _now()
    return 200, {
        "streamId": int(target),
        "subStreamId": obj.record["substreamid"],
        "updatedTime": obj.record["updatedTime"],
    }


# -- users -----------------------------------------------------------------------------------


def _user(fake: FakeCommBox, user_id: str) -> dict[str, Any]:
    if not user_id.isdecimal():
        raise _HTTPError(404, f"User {user_id} not found")
    uid = int(user_id)
    mine = [o for o in fake.objects.values() if o.record["user"].get("id") == uid]
    if not mine:
        raise _HTTPError(404, f"User {user_id} not found")
    base = mine[0].record["user"]
    identities = {}
    for o in mine:
        r = o.record
        identities[r["user_identity"]] = {
            "id": r["user_identity"],
            "userId": uid,
            "numObjects": sum(1 for x in mine if x.record["user_identity"] == r["user_identity"]),
            "streamProviderId": r["userStreamProviderId"],
            "streamProviderType": r["userStreamProviderType"],
            "content": "{}",
        }
    user = {
        "id": uid,
        "firstName": base.get("firstName", ""),
        "lastName": base.get("lastName", ""),
        "phone1": base.get("phone1", ""),
        "email": base.get("email", ""),
        "uniqueId": base.get("uniqueId", ""),
        "remarks": base.get("remarks"),
        "content": base.get("content", "{}"),
        "numIdentities": len(identities),
        "numObjects": len(mine),
        "identities": list(identities.values()),
    }
    user.update(fake.user_edits.get(uid, {}))
    return user


@route("GET", "/users/{user}")
async def _get_user(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    return 200, _user(fake, p["user"])


_USER_FIELDS = {
    "uniqueid": "uniqueId",
    "firstname": "firstName",
    "lastname": "lastName",
    "phone1": "phone1",
    "phone2": "phone2",
    "email": "email",
    "remarks": "remarks",
}


@route("POST", "/users/{user}")
async def _update_user(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    _user(fake, p["user"])
    uid = int(p["user"])
    edits = fake.user_edits.setdefault(uid, {})
    for key, value in _data(body).items():
        if key.lower() == "content":
            edits["content"] = json.dumps(value) if not isinstance(value, str) else value
        elif key.lower() in _USER_FIELDS:
            edits[_USER_FIELDS[key.lower()]] = value
        else:
            raise _HTTPError(400, f"Bad Request: unknown user field {key}")
    return 200, {"Id": uid}


@route("GET", "/users/identities/{identity}/objects")
async def _user_objects(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    if not p["identity"].isdecimal():
        raise _HTTPError(400, "Bad Request: USER_IDENTITY_ID must be a number")
    identity = int(p["identity"])
    stream = _int(q, "stream")
    candidates = (
        o
        for o in fake.objects.values()
        if o.record["user_identity"] == identity and (not stream or o.record["streamid"] == stream)
    )
    return 200, [_search_record(o, q) for o in _page(_filtered(candidates, q), q)]


# -- managers, presence, profiles, assignments, teams ----------------------------------------


def _manager(fake: FakeCommBox, manager_id: str) -> dict[str, Any]:
    if not _known(manager_id, fake.managers):
        raise _HTTPError(404, f"Manager {manager_id} not found")
    return fake.managers[int(manager_id)]


@route("GET", "/managers")
async def _managers(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    return 200, list(fake.managers.values())


_MANAGER_FIELDS = {
    "firstname": "firstName",
    "lastname": "lastName",
    "email": "email",
    "isadmin": "isAdmin",
    "username": "userName",
    "teamid": "teamId",
    "permissionid": "permissionId",
}


def _apply_manager(manager: dict[str, Any], data: dict[str, Any]) -> None:
    for key, value in data.items():
        if key.lower() == "password":
            continue  # accepted, never stored or returned
        if key.lower() not in _MANAGER_FIELDS:
            raise _HTTPError(400, f"Bad Request: unknown manager field {key}")
        manager[_MANAGER_FIELDS[key.lower()]] = value


@route("POST", "/managers")
async def _create_manager(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    data = _data(body)
    if not _get(data, "UserName") or not _get(data, "Email"):
        raise _HTTPError(400, "Bad Request: UserName and Email are required")
    manager_id = next(fake._ids)
    manager: dict[str, Any] = {"id": manager_id, "profiles": ""}
    _apply_manager(manager, data)
    fake.managers[manager_id] = manager
    return 200, {"id": manager_id}


@route("POST", "/managers/{manager}")
async def _update_manager(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    manager = _manager(fake, p["manager"])
    _apply_manager(manager, _data(body))
    return 200, {"id": manager["id"]}


@route("DELETE", "/managers/{manager}")
async def _delete_manager(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    manager = _manager(fake, p["manager"])
    del fake.managers[manager["id"]]
    return 200, {"id": manager["id"]}


@route("GET", "/managers/{manager}/stats")
async def _manager_stats(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    manager = _manager(fake, p["manager"])
    assigned = sum(
        1 for o in fake.objects.values() if o.record["assignedManagerId"] == manager["id"]
    )
    return 200, {
        "id": manager["id"],
        "AsyncAssignedNoResponse": assigned,
        "AsyncAssignedInProccess": 0,
        "SyncAssignedNoResponse": 0,
        "SyncAssignedInProccess": 0,
        "FaceToFaceStatus": False,
        "TotalAsyncAssigned": assigned,
        "TotalSyncAssigned": 0,
    }


_PRESENCE_TYPES = {1: "Active", 2: "Busy", 3: "Away"}


def _presence(fake: FakeCommBox, manager_id: int) -> dict[str, Any]:
    type_id = fake.presence.get(manager_id, 1)
    return {"presence_type": type_id, "type_id": type_id, "name": _PRESENCE_TYPES[type_id]}


@route("GET", "/managers/{manager}/presence")
async def _get_presence(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    return 200, _presence(fake, _manager(fake, p["manager"])["id"])


@route("POST", "/managers/{manager}/presence/{activity}")
async def _set_presence(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    manager = _manager(fake, p["manager"])
    if not _known(p["activity"], _PRESENCE_TYPES):
        raise _HTTPError(400, f"Bad Request: unknown presence type {p['activity']}")
    fake.presence[manager["id"]] = int(p["activity"])
    return 200, _presence(fake, manager["id"])


@route("GET", "/managers/presence")
async def _presence_types(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    return 200, [{"id": i, "name": n, "presenceType": i} for i, n in _PRESENCE_TYPES.items()]


@route("GET", "/managers/profiles")
async def _profiles(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    return 200, list(fake.profiles.values())


def _member(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "Id": m["id"],
        "FirstName": m.get("firstName"),
        "LastName": m.get("lastName"),
        "Permission": m.get("permissionId"),
        "Email": m.get("email"),
        "UserName": m.get("userName"),
        "TeamId": m.get("teamId", 0),
    }


@route("GET", "/managers/profiles/{profile}")
async def _by_profile(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    if not _known(p["profile"], fake.profiles):
        raise _HTTPError(404, f"Profile {p['profile']} not found")
    pid = int(p["profile"])
    return 200, [
        _member(m) for mid, m in fake.managers.items() if pid in fake.manager_profiles.get(mid, [])
    ]


def _sync_profiles(fake: FakeCommBox, manager: dict[str, Any]) -> list[dict[str, Any]]:
    ids = fake.manager_profiles.get(manager["id"], [])
    manager["profiles"] = ",".join(str(i) for i in ids)
    return [fake.profiles[i] for i in ids]


@route("POST", "/managers/{manager}/profiles")
async def _add_profiles(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    manager = _manager(fake, p["manager"])
    if ("add" in q) == ("set" in q):
        raise _HTTPError(400, "Bad Request: use exactly one of add or set")
    key = "add" if "add" in q else "set"
    ids: list[int] = []
    for value in q[key]:
        for part in value.split(","):
            if not _known(part.strip(), fake.profiles):
                raise _HTTPError(400, f"Bad Request: unknown profile {part}")
            ids.append(int(part))
    current = [] if key == "set" else fake.manager_profiles.get(manager["id"], [])
    fake.manager_profiles[manager["id"]] = list(dict.fromkeys([*current, *ids]))
    return 200, _sync_profiles(fake, manager)


@route("DELETE", "/managers/{manager}/profiles")
async def _remove_all_profiles(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    manager = _manager(fake, p["manager"])
    fake.manager_profiles[manager["id"]] = []
    _sync_profiles(fake, manager)
    return 200, ""


@route("DELETE", "/managers/{manager}/profiles/{profile}")
async def _remove_profile(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    manager = _manager(fake, p["manager"])
    ids = fake.manager_profiles.get(manager["id"], [])
    if not _known(p["profile"], ids):
        raise _HTTPError(404, f"Profile {p['profile']} not on manager {manager['id']}")
    ids.remove(int(p["profile"]))
    _sync_profiles(fake, manager)
    return 200, ""


@route("GET", "/managers/{manager}/assignments")
async def _assignments(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    manager = _manager(fake, p["manager"])
    count = sum(1 for o in fake.objects.values() if o.record["assignedManagerId"] == manager["id"])
    if not count:
        return 200, []
    return 200, [
        {
            "AssignedObjectsCount": count,
            "StreamTypeId": 14,
            "ModuleId": 14,
            "ModuleUniqueName": "sms",
        }
    ]


def _assignment_target(fake: FakeCommBox, p: P, q: Q) -> tuple[dict[str, Any], _Object]:
    manager = _manager(fake, p["manager"])
    object_id = _one(q, "objectId")
    if object_id is None:
        raise _HTTPError(400, "Bad Request: objectId is required")
    return manager, fake._object(object_id)


@route("POST", "/managers/{manager}/assignments")
async def _assign(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    manager, obj = _assignment_target(fake, p, q)
    obj.record["assignedManagerId"] = manager["id"]
    return 200, None


@route("DELETE", "/managers/{manager}/assignments")
async def _unassign(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    manager, obj = _assignment_target(fake, p, q)
    if obj.record["assignedManagerId"] != manager["id"]:
        raise _HTTPError(400, f"Bad Request: object {obj.id} is not assigned to {manager['id']}")
    obj.record["assignedManagerId"] = 0
    return 200, None


@route("GET", "/managers/teams")
async def _teams(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    name = (_one(q, "Name") or "").lower()
    return 200, [{"teamId": i, "name": n} for i, n in fake.teams.items() if name in n.lower()]


@route("POST", "/managers/teams")
async def _create_team(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    name = _one(q, "Name")
    if not name:
        raise _HTTPError(400, "Bad Request: Name is required")
    team_id = next(fake._ids)
    fake.teams[team_id] = name
    return 200, {"id": team_id}


def _team(fake: FakeCommBox, team_id: str) -> int:
    if not _known(team_id, fake.teams):
        raise _HTTPError(404, f"Team {team_id} not found")
    return int(team_id)


@route("GET", "/managers/teams/{team}")
async def _team_members(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    tid = _team(fake, p["team"])
    return 200, [_member(m) for m in fake.managers.values() if m.get("teamId") == tid]


@route("POST", "/managers/teams/{team}")
async def _update_team(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    tid = _team(fake, p["team"])
    name = _one(q, "Name")
    if name:
        fake.teams[tid] = name
    return 200, ""


@route("DELETE", "/managers/teams/{team}")
async def _delete_team(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    del fake.teams[_team(fake, p["team"])]
    return 200, ""


# -- system and stats ------------------------------------------------------------------------


class _Status(_HTTPError):
    """A 2xx answer with a description of its own and no data."""


@route("GET", "/core/systemstatus")
async def _system_status(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    raise _Status(200, "System is operational")


@route("GET", "/stats/streams")
async def _stats(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    counts: dict[tuple[int, int, int], int] = {}
    for o in fake.objects.values():
        key = (o.record["streamid"], o.record["substreamid"], o.record["statusId"])
        counts[key] = counts.get(key, 0) + 1
    return 200, [
        {"moduleId": 14, "streamId": s, "subStreamId": sub, "statusId": st, "c": c}
        for (s, sub, st), c in sorted(counts.items())
    ]


@route("GET", "/stats/streamsSLAExceptions")
async def _sla(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    return 200, {"Item1": [], "Item2": []}


# -- SMS and WhatsApp ------------------------------------------------------------------------


def _encrypted(fake: FakeCommBox, value: str) -> str:
    if value.isdecimal():
        raise _HTTPError(400, "Bad Request: this endpoint needs the encrypted stream id")
    fake._stream(value, creating=True)
    return value


def _phone_ok(value: Any) -> bool:
    text = str(value)
    return text.isascii() and text.isdigit() and not text.startswith("000")


@route("POST", "/sms/sendsms/{stream}")
async def _send_sms(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    stream = _encrypted(fake, p["stream"])
    data = _data(body)
    number, message = _get(data, "Number"), _get(data, "Message")
    if not _phone_ok(number) or not message:
        raise _HTTPError(400, "Bad Request: Number and Message are required")
    fake.sms_sent.append({"stream": stream, "number": str(number), "message": message})
    return 200, ""


@route("POST", "/sms/sendinitialtext/{stream}/{phone}")
async def _send_initial(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    stream = _encrypted(fake, p["stream"])
    if not _phone_ok(p["phone"]):
        raise _HTTPError(400, f"Bad Request: invalid phone number {p['phone']}")
    fake.sms_sent.append({"stream": stream, "number": p["phone"], "message": None})
    return 200, ""


def _wa_result(fake: FakeCommBox, stream: str, to: str, item: dict[str, Any]) -> dict[str, Any]:
    if not _phone_ok(to):
        return {"recipient": to, "status": 400, "failed": "invalid — Not a valid WhatsApp user"}
    result: dict[str, Any] = {
        "recipient": to,
        "id": "wamid." + secrets.token_hex(8),
        "status": 200,
    }
    obj_data = item.get("object_data")
    if isinstance(obj_data, dict):
        result["object_id"] = seed_conversation(
            fake,
            stream,
            message=f"template {item.get('name', '')}".strip(),
            created=None,
            children=0,
            status=int(obj_data.get("StatusId") or 1),
            user_stream_provider_id=to,
            user_identity=None,
        )
    fake.whatsapp_sent.append({"stream": stream, "to": to, "item": item, **result})
    return result


def _wa_answer(results: list[dict[str, Any]]) -> Result:
    if all(r["status"] == 200 for r in results):
        return 200, results
    if any(r["status"] == 200 for r in results):
        return 206, results
    raise _HTTPError(400, "Bad Request: no recipient could be sent")


@route("POST", "/v2/whatsapp/sendtemplatedmessage/{stream}")
async def _send_template(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    stream = _encrypted(fake, p["stream"])
    items = body.get("data") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise _HTTPError(400, 'Bad Request: the body must be {"data": [...]}')
    if len(items) > 20:
        raise _HTTPError(400, "Bad Request: at most 20 recipients per call")
    results = []
    for item in items:
        tpl = item.get("template_data") if isinstance(item, dict) else None
        if not isinstance(tpl, dict) or not isinstance(tpl.get("template"), dict):
            raise _HTTPError(400, "Bad Request: template_data.template is required")
        name = tpl["template"].get("name")
        results.append(_wa_result(fake, stream, str(tpl.get("to", "")), {**item, "name": name}))
    return _wa_answer(results)


@route("POST", "/emarsys/sendwhatsapptemplate/{stream}")
async def _emarsys(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    stream = _encrypted(fake, p["stream"])
    if not isinstance(body, dict) or not all(
        body.get(k) for k in ("to", "templateName", "template.language.code")
    ):
        raise _HTTPError(400, "Bad Request: to, templateName and template.language.code")
    item = {"name": body["templateName"]}
    if any(k.startswith("object.") for k in body):
        item["object_data"] = {"StatusId": body.get("object.statusid", 1)}
    return _wa_answer([_wa_result(fake, stream, str(body["to"]), item)])


@route("POST", "/whatsapp/uploadmedia/{stream}")
async def _upload_media(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    _encrypted(fake, p["stream"])
    if not isinstance(body, _Multipart) or not any(f["field"] == "pic" for f in body.files):
        raise _HTTPError(400, "Bad Request: a multipart 'pic' file is required")
    out = []
    for f in body.files:
        media = {"filename": f["filename"], "id": str(next(fake._ids))}
        fake.media.append({**media, "size": f["size"]})
        out.append(media)
    return 200, out


@route("GET", "/whatsapp/validatecontact/{stream}/{phone}")
async def _validate_contact(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    _encrypted(fake, p["stream"])
    return 200, {"valid": _phone_ok(p["phone"])}


@route("POST", "/whatsapp/campaign")
async def _campaign(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    if not isinstance(body, _Multipart):
        raise _HTTPError(400, "Bad Request: multipart/form-data is required")
    fields = body.fields
    for name in ("template_name", "language_code", "stream_id"):
        if not fields.get(name):
            raise _HTTPError(400, f"Bad Request: {name} is required")
    if not body.files and not fields.get("audience_id"):
        raise _HTTPError(400, "Bad Request: audience_file or audience_id is required")
    fake.campaigns.append({"fields": fields, "files": body.files})
    raise _Status(200, "Campaign created")


# -- tags, forms, tickets, automation --------------------------------------------------------


@route("GET", "/tags")
async def _tags(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    return 200, list(fake.tags.values())


@route("POST", "/tags")
async def _create_tag(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    data = _data(body)
    if not _get(data, "Name"):
        raise _HTTPError(400, "Bad Request: Name is required")
    tag_id = next(fake._ids)
    fake.tags[tag_id] = {
        "id": tag_id,
        "name": _get(data, "Name"),
        "groupId": _get(data, "TagGroupId"),
    }
    return 200, {"id": str(tag_id)}


def _tag(fake: FakeCommBox, tag_id: str) -> dict[str, Any]:
    if not _known(tag_id, fake.tags):
        raise _HTTPError(404, f"Tag {tag_id} not found")
    return fake.tags[int(tag_id)]


@route("POST", "/tags/{tag}")
async def _update_tag(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    tag = _tag(fake, p["tag"])
    data = _data(body)
    if "Name" in data:
        tag["name"] = data["Name"]
    if "Tag Group Id" in data:
        tag["groupId"] = data["Tag Group Id"]
    return 200, {"id": None}


@route("DELETE", "/tags/{tag}")
async def _delete_tag(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    del fake.tags[_tag(fake, p["tag"])["id"]]
    return 200, {"id": None}


@route("GET", "/tags/groups")
async def _tag_groups(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    return 200, list(fake.tag_groups.values())


@route("POST", "/tags/groups")
async def _create_group(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    name = _get(_data(body), "Name")
    if not name:
        raise _HTTPError(400, "Bad Request: Name is required")
    group_id = next(fake._ids)
    fake.tag_groups[group_id] = {"id": group_id, "name": name, "brandId": 1054}
    return 200, {"id": str(group_id)}


def _group(fake: FakeCommBox, group_id: str) -> dict[str, Any]:
    if not _known(group_id, fake.tag_groups):
        raise _HTTPError(404, f"Tags group {group_id} not found")
    return fake.tag_groups[int(group_id)]


@route("POST", "/tags/groups/{group}")
async def _update_group(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    group = _group(fake, p["group"])
    group["name"] = _get(_data(body), "Name") or group["name"]
    return 200, {"id": None}


@route("DELETE", "/tags/groups/{group}")
async def _delete_group(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    del fake.tag_groups[_group(fake, p["group"])["id"]]
    return 200, {"id": None}


def _form_link(referring: Any) -> dict[str, Any]:
    return {
        "conversation_id": str(referring or ""),
        "form_link": f"{BASE_URL}/form/fake/{secrets.token_hex(16)}",
    }


@route("POST", "/forms/createlink/{form}")
async def _create_link(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    data = _data(body)
    if not _get(data, "streamProviderId") or _get(data, "streamProviderType") not in (4, 5):
        raise _HTTPError(400, "Bad Request: streamProviderId and streamProviderType (4 or 5)")
    return 200, _form_link(_get(data, "referringObjectId"))


@route("POST", "/forms/createpredefinedlink/{form}")
async def _create_predefined_link(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    if not isinstance(body, _Multipart) or not body.files:
        raise _HTTPError(400, "Bad Request: multipart with a file is required")
    if not body.fields.get("streamProviderId"):
        raise _HTTPError(400, "Bad Request: streamProviderId is required")
    return 200, _form_link(body.fields.get("referringObjectId"))


@route("POST", "/auth/ticket")
async def _ticket(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    data = _data(body)
    if not data.get("brand"):
        raise _HTTPError(400, "Bad Request: brand is required")
    return 200, {"encpryptedString": secrets.token_urlsafe(48)}


@route("GET", "/automation/objects/{object}/context")
async def _get_context(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    obj = fake._object(p["object"])
    return 200, {f"data.{k}": v for k, v in obj.context.items()}


@route("POST", "/automation/objects/{object}/context")
async def _set_context(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    obj = fake._object(p["object"])
    props = _data(body).get("properties")
    if not isinstance(props, dict):
        raise _HTTPError(400, "Bad Request: data.properties must be an object")
    obj.context.update({k: str(v) for k, v in props.items()})
    return 200, {"id": str(obj.id)}


@route("POST", "/automation/objects/{object}/context/jump")
async def _jump(fake: FakeCommBox, p: P, q: Q, body: Any) -> Result:
    obj = fake._object(p["object"])
    address = _data(body).get("address")
    if not isinstance(address, str) or ":" not in address:
        raise _HTTPError(400, "Bad Request: address like '4079:n_8' is required")
    obj.context["__node"] = address
    return 200, {"id": None}
