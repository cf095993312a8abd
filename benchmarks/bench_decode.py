"""Decoding speed: a Get Object response with 1,000 children, and 10,000 JSON webhook payloads.

Three ways side by side in one run, each from the same bytes:
- ``json.loads`` alone (the floor);
- ``json.loads`` + commbox_async's converter (typed, tolerant: any key casing, string numbers,
  JSON-in-strings, several date formats);
- ``json.loads`` + equivalent pydantic v2 models (the same fields, the same spellings as
  aliases, a before-validator for the day-first dates the docs show).
Best of several repeats is kept. Goal: the converter no slower than pydantic v2.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from _common import report
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from commbox_async.models import ObjectDetails, ObjectRecord, parse_datetime, structure

REPEATS = 5


def get_object_body(children: int) -> bytes:
    child = {
        "id": 978944,
        "object_id": 293854,
        "content": "{}",
        "message": "some other message...",
        "createdTime": "2024-08-06T07:55:52.2581942Z",
        "streamProviderType": "5",
        "user": {
            "id": 520803,
            "managerId": 520803,
            "isManager": True,
            "identity": {
                "id": 531811,
                "streamProviderId": "michae12@gmail.com",
                "streamProviderType": 0,
                "firstName": "michael",
                "lastName": "null",
                "thumbnailUrl": None,
            },
        },
    }
    data = {
        "objectId": 293854,
        "streamid": 53211,
        "substreamid": 2432,
        "streamProviderId": "972505555555",
        "streamProviderType": "5",
        "user_identity": "528986",
        "firstName": "Eddie",
        "lastName": "Doe",
        "userStreamProviderId": "972505555555_by",
        "userStreamProviderType": "5",
        "content": '{"guidRT":"82c952166e0b4989b932c41d1","originUrl":"https://apps.commbox.com/Demo"}',
        "message": "I need some help",
        "createdTime": "2024-08-06T07:51:52.2581942Z",
        "updatedTime": "2024-08-06T07:51:52.2581942Z",
        "closeTime": None,
        "statusId": 1,
        "assignedManagerId": 0,
        "type": 4,
        "isManager": False,
        "user": {
            "id": 520760,
            "uniqueId": "12345",
            "phone1": "972531234567",
            "phone2": "972501234332",
            "email": "eddiedoe053@gmail.com",
            "firstName": "Eddie",
            "lastName": "Doe",
            "gender": "Male",
            "numberIdentities": 3,
            "locale": "en_US",
            "birthday": None,
            "remarks": None,
            "content": "{}",
            "childs": [dict(child, id=978944 + i) for i in range(children)],
        },
    }
    return json.dumps(
        {"status": "200", "description": "OK", "response_time": "t", "data": [data]}
    ).encode()


def webhook_body(i: int) -> bytes:
    return json.dumps(
        {
            "payload": {
                "Message": "Hello World",
                "Content": {"languages": [{"Item1": "en", "Item2": 1366764}]},
                "ManagerId": "0",
                "Snippet": "Hello World",
                "User": {
                    "Content": {},
                    "Identity": {
                        "Id": "546374",
                        "StreamProviderId": "972539640001",
                        "StreamProviderType": "5",
                        "StreamProviderEmail": "",
                        "UserName": "Mendy Doe",
                        "FirstName": "Mendy",
                        "LastName": "Doe",
                        "ThumbnailUrl": "",
                    },
                    "Id": "537520",
                    "Phone1": "972539640001",
                    "Phone2": "",
                    "UniqueID": "",
                    "Email": "mendyDoe123@gmail.com",
                    "FirstName": "Mendy",
                    "LastName": "Doe",
                    "NumIdentities": "2",
                    "Locale": "",
                    "Remarks": "",
                    "NumObjects": "67",
                },
                "Id": str(381226 + i),
                "StreamId": "1772",
                "SubStreamId": "0",
                "Type": "0",
                "StatusID": "1",
                "CreateDate": "16-06-2024 08:35:11",
                "StreamProviderId": "972539640281_by_24",
                "StreamProviderType": "WhatsApp",
            }
        }
    ).encode()


# -- pydantic v2 equivalents -----------------------------------------------------------------


def _dt(value: Any) -> Any:
    if isinstance(value, str) and value and value[2] == "-":  # day-first form
        return parse_datetime(value)
    return value


def A(*names: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(*names))


class PIdentity(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int | None = A("id", "Id", "identityId")
    stream_provider_id: str | None = A("streamProviderId", "StreamProviderId")
    stream_provider_type: int | str | None = A("streamProviderType", "StreamProviderType")
    stream_provider_email: str | None = A("streamProviderEmail", "StreamProviderEmail")
    user_name: str | None = A("userName", "UserName")
    first_name: str | None = A("firstName", "FirstName")
    last_name: str | None = A("lastName", "LastName")
    thumbnail_url: str | None = A("thumbnailUrl", "ThumbnailUrl")


class PChildUser(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int | None = A("id", "Id")
    manager_id: int | None = A("managerId", "ManagerId")
    is_manager: bool | None = A("isManager", "IsManager")
    identity: PIdentity | None = A("identity", "Identity")


class PChild(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int | None = A("id", "Id")
    object_id: int | None = A("object_id", "objectId")
    content: dict[str, Any] | str | None = A("content", "Content")
    message: str | None = A("message", "Message")
    created_time: datetime | None = A("createdTime", "CreatedTime", "CreateDate")
    stream_provider_type: int | str | None = A("streamProviderType", "StreamProviderType")
    user: PChildUser | None = A("user", "User")

    _d = field_validator("created_time", mode="before")(_dt)


class PUser(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int | None = A("id", "Id")
    unique_id: str | None = A("uniqueId", "UniqueId", "UniqueID")
    phone1: str | None = A("phone1", "Phone1")
    phone2: str | None = A("phone2", "Phone2")
    email: str | None = A("email", "Email")
    first_name: str | None = A("firstName", "FirstName")
    last_name: str | None = A("lastName", "LastName")
    gender: str | None = A("gender", "Gender")
    num_identities: int | None = A("numberIdentities", "NumIdentities")
    locale: str | None = A("locale", "Locale")
    remarks: str | None = A("remarks", "Remarks")
    num_objects: int | None = A("numObjects", "NumObjects")
    content: dict[str, Any] | str | None = A("content", "Content")
    identity: PIdentity | None = A("identity", "Identity")
    children: list[PChild] = Field(
        default_factory=list, validation_alias=AliasChoices("childs", "Childs")
    )


class PObjectDetails(BaseModel):
    model_config = ConfigDict(extra="allow")
    object_id: int | None = A("objectId")
    stream_id: int | None = A("streamid")
    sub_stream_id: int | None = A("substreamid")
    stream_provider_id: str | None = A("streamProviderId")
    stream_provider_type: int | str | None = A("streamProviderType")
    user_identity: int | None = A("user_identity")
    first_name: str | None = A("firstName")
    last_name: str | None = A("lastName")
    user_stream_provider_id: str | None = A("userStreamProviderId")
    user_stream_provider_type: int | str | None = A("userStreamProviderType")
    content: dict[str, Any] | str | None = A("content")
    message: str | None = A("message")
    created_time: datetime | None = A("createdTime")
    updated_time: datetime | None = A("updatedTime")
    close_time: datetime | None = A("closeTime")
    status_id: int | None = A("statusId")
    assigned_manager_id: int | None = A("assignedManagerId")
    type: int | None = A("type")
    is_manager: bool | None = A("isManager")
    user: PUser | None = A("user")


class PObjectRecord(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int | None = A("Id", "id")
    stream_id: int | None = A("StreamId")
    sub_stream_id: int | None = A("SubStreamId")
    type: int | None = A("Type")
    status_id: int | None = A("StatusID", "StatusId")
    created_time: datetime | None = A("CreateDate", "CreatedTime")
    message: str | None = A("Message")
    content: dict[str, Any] | str | None = A("Content")
    manager_id: int | None = A("ManagerId")
    snippet: str | None = A("Snippet")
    stream_provider_id: str | None = A("StreamProviderId")
    stream_provider_type: int | str | None = A("StreamProviderType")
    user: PUser | None = A("User")

    _d = field_validator("created_time", mode="before")(_dt)


# -- timing ----------------------------------------------------------------------------------


def best(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    obj_body = get_object_body(1000)
    hooks = [webhook_body(i) for i in range(10_000)]

    # Both decode to the same values (spot check), so the comparison is like for like.
    ours = structure(json.loads(obj_body)["data"][0], ObjectDetails)
    theirs = PObjectDetails.model_validate(json.loads(obj_body)["data"][0])
    assert ours.user is not None and theirs.user is not None
    assert len(ours.user.children) == len(theirs.user.children) == 1000
    assert ours.created_time == theirs.created_time.astimezone(timezone.utc)  # type: ignore[union-attr]
    rec = structure(json.loads(hooks[0])["payload"], ObjectRecord)
    prec = PObjectRecord.model_validate(json.loads(hooks[0])["payload"])
    assert rec.id == prec.id and rec.created_time == prec.created_time.replace(tzinfo=timezone.utc)  # type: ignore[union-attr]

    cases = {
        "get object, 1,000 children": (
            lambda: json.loads(obj_body),
            lambda: structure(json.loads(obj_body)["data"][0], ObjectDetails),
            lambda: PObjectDetails.model_validate(json.loads(obj_body)["data"][0]),
        ),
        "10,000 JSON webhook payloads": (
            lambda: [json.loads(b) for b in hooks],
            lambda: [structure(json.loads(b)["payload"], ObjectRecord) for b in hooks],
            lambda: [PObjectRecord.model_validate(json.loads(b)["payload"]) for b in hooks],
        ),
    }
    rows = []
    ratios = {}
    for name, (plain, ours_fn, pyd_fn) in cases.items():
        t_plain, t_ours, t_pyd = best(plain), best(ours_fn), best(pyd_fn)
        ratios[name] = t_pyd / t_ours
        rows.append(
            {
                "case": name,
                "json.loads ms": t_plain * 1000,
                "commbox ms": t_ours * 1000,
                "pydantic v2 ms": t_pyd * 1000,
                "speed vs pydantic": t_pyd / t_ours,
            }
        )
    report(
        "bench_decode",
        rows,
        {
            "goal": "speed vs pydantic >= 1.0 (no slower)",
            "met": all(r >= 1.0 for r in ratios.values()),
        },
    )


if __name__ == "__main__":
    main()
