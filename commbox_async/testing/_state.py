"""What the fake holds: conversations, streams, the account (managers, teams, tags), the sends,
the requests it received and the webhook events it would send; and the domain rules on them."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

import attrs

from ..models import ObjectActivityType
from ._wire import HTTPError

FIRST_ID = 3377699720568713  # CommBox ids are large int64s, as in the webhooks page

DEFAULT_MANAGER: Mapping[str, Any] = MappingProxyType(
    {
        "id": 520760,
        "content": '{"user_color":"","_isEmailVerified":true,"_activationState":"Handled"}',
        "identityId": 2192427,
        "streamProviderId": "john.s@gmail.com",
        "thumbnailUrl": None,
        "brandId": 1054,
        "permissionId": 3,
        "firstName": "John",
        "lastName": "Smith",
        "email": "john.s@gmail.com",
        "userName": "john.s",
        "teamId": 431,
        "teamName": "VIP",
        "profiles": "",
        "maxSyncObjectsAssignments": 3,
        "maxAsyncObjectsAssignments": 5,
        "multiReplyAccess": "",
    }
)


@attrs.define
class RequestRecord:
    """One request the fake received: for assertions in tests."""

    method: str
    path: str
    query: str
    status: int
    fault: str | None
    processed: bool
    body: Any = None
    at: float = attrs.field(factory=time.time)


@attrs.define
class Conversation:
    """One conversation (a CommBox *object*): ``record`` is what Get Object returns."""

    id: int
    stream: str
    record: dict[str, Any]
    children: list[dict[str, Any]] = attrs.field(factory=list)
    activities: list[dict[str, Any]] = attrs.field(factory=list)
    activity_log: list[dict[str, Any]] = attrs.field(factory=list)
    remarks: list[dict[str, Any]] = attrs.field(factory=list)
    indicators: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    tags: list[int] = attrs.field(factory=list)
    attachments: list[dict[str, Any]] = attrs.field(factory=list)
    created: float = attrs.field(factory=time.time)  # unix seconds, for time-range search
    context: dict[str, Any] = attrs.field(factory=dict)  # automation variables

    def summary(self) -> dict[str, Any]:
        """This conversation as the fake's ``state()`` shows it."""
        return {
            "id": self.id,
            "record": self.record,
            "children": self.children,
            "status": self.record["statusId"],
            "content": self.record["content"],
            "activity_log": self.activity_log,
            "remarks": self.remarks,
            "indicators": list(self.indicators.values()),
            "tags": self.tags,
            "attachments": self.attachments,
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeState:
    """Everything the fake holds.

    - ``streams``: a fixed set of stream ids; others are 404 (default: created on first use).
    - ``managers``: the account's agents (default: one, John Smith, as the docs show him).
    """

    def __init__(
        self,
        *,
        streams: Iterable[int | str] | None = None,
        managers: Iterable[Mapping[str, Any]] | None = None,
    ) -> None:
        self.fixed_streams = {str(s) for s in streams} if streams is not None else None
        self._default_managers = (
            [dict(m) for m in managers] if managers is not None else [dict(DEFAULT_MANAGER)]
        )
        self.reset()

    def reset(self) -> None:
        """Forget every object, request and event (also ``POST /_fake/reset``)."""
        self.objects: dict[int, Conversation] = {}
        self.streams: dict[str, list[int]] = {s: [] for s in (self.fixed_streams or ())}
        # An encrypted stream id stands for a numeric one, which records and webhooks carry.
        self._stream_numbers: dict[str, int] = {}
        self.managers: dict[int, dict[str, Any]] = {
            int(m["id"]): dict(m) for m in self._default_managers
        }
        self.requests: list[RequestRecord] = []
        self.outbox: list[dict[str, Any]] = []
        self.user_edits: dict[int, dict[str, Any]] = {}
        self.teams: dict[int, str] = {431: "VIP"}
        self.profiles: dict[int, dict[str, Any]] = {
            1: {"id": 1, "name": "Sales", "UniqueName": "sales"},
            2: {"id": 2, "name": "Support", "UniqueName": "support"},
        }
        self.manager_profiles: dict[int, list[int]] = {}
        self.presence: dict[int, int] = {}
        self.tags: dict[int, dict[str, Any]] = {}
        self.tag_groups: dict[int, dict[str, Any]] = {}
        self.sms_sent: list[dict[str, Any]] = []
        self.whatsapp_sent: list[dict[str, Any]] = []
        self.campaigns: list[dict[str, Any]] = []
        self.media: list[dict[str, Any]] = []
        self._ids = itertools.count(FIRST_ID)

    def new_id(self) -> int:
        """The next id, shaped like CommBox's (one count for objects, messages, users, tags...)."""
        return next(self._ids)

    def state(self) -> dict[str, Any]:
        """Everything the fake holds, as JSON (also ``GET /_fake/state``)."""
        return {
            "streams": {
                s: [self.objects[i].summary() for i in ids] for s, ids in self.streams.items()
            },
            "managers": list(self.managers.values()),
            "requests": len(self.requests),
            "outbox": len(self.outbox),
        }

    def all_objects(self) -> list[dict[str, Any]]:
        """Every conversation's record (the shape Get Object returns, without children)."""
        return [o.record for o in self.objects.values()]

    # -- lookups -------------------------------------------------------------------------------

    def stream_ids(self, stream_id: str, *, creating: bool = False) -> list[int]:
        """The ids of a stream's conversations; an unknown stream is 404 (400 when creating)
        if the streams are fixed, and created empty otherwise."""
        if stream_id not in self.streams:
            if self.fixed_streams is not None:
                raise HTTPError(400 if creating else 404, f"Unknown stream {stream_id}")
            self.streams[stream_id] = []
        return self.streams[stream_id]

    def stream_number(self, stream_id: str) -> int:
        """The numeric id of a stream (encrypted ids get one of their own)."""
        if stream_id.isdecimal():
            return int(stream_id)
        return self._stream_numbers.setdefault(stream_id, 24569 + len(self._stream_numbers))

    def conversation(self, object_id: str, stream_id: str | None = None) -> Conversation:
        """The conversation ``object_id`` (in ``stream_id`` if given), or a 404."""
        try:
            obj = self.objects[int(object_id)]
        except (ValueError, KeyError):
            raise HTTPError(404, f"Object {object_id} not found") from None
        if stream_id is not None and obj.stream != stream_id:
            self.stream_ids(stream_id)
            raise HTTPError(404, f"Object {object_id} not found in stream {stream_id}")
        return obj

    # -- changes -------------------------------------------------------------------------------

    def store(self, obj: Conversation) -> None:
        """Add a new conversation to its stream (which the caller has already looked up)."""
        self.objects[obj.id] = obj
        self.streams[obj.stream].append(obj.id)

    def add_conversation(
        self,
        stream_id: int | str,
        *,
        message: str = "hello",
        created: datetime | float | None = None,
        children: int = 0,
        status: int = 1,
        user_stream_provider_id: str = "972500000000",
        user_identity: int | None = None,
    ) -> int:
        """Seed a conversation directly (no request, no event): for search and export tests.
        ``created`` sets its creation time; ``children`` adds that many customer messages."""
        stream = str(stream_id)
        self.stream_ids(stream, creating=True)
        object_id = self.new_id()
        if isinstance(created, datetime):
            ts = created.timestamp()
        else:
            ts = created if created is not None else datetime.now(timezone.utc).timestamp()
        when = _iso(ts)
        identity = user_identity if user_identity is not None else self.new_id()
        user_id = self.new_id()
        record: dict[str, Any] = {
            "objectId": object_id,
            "streamid": self.stream_number(stream),
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
        obj = Conversation(id=object_id, stream=stream, record=record, created=ts)
        self.store(obj)
        for i in range(children):
            obj.children.append(
                {
                    "id": self.new_id(),
                    "object_id": object_id,
                    "content": "{}",
                    "message": f"{message} #{i + 1}",
                    "createdTime": when,
                    "streamProviderType": 5,
                    "user": {"id": user_id, "managerId": 0, "isManager": False},
                }
            )
        return object_id

    def activity(self, obj: Conversation, type_: ObjectActivityType, data: dict[str, Any]) -> None:
        """Log an activity on a conversation, and its ``OnNewActivity`` event."""
        created = datetime.now(timezone.utc)
        activity_id = self.new_id()
        obj.activities.append(
            {
                "objectId": str(obj.id),
                "user": {
                    "id": 0,
                    "first_name": "API",
                    "last_name": "",
                    "identity": {"identityId": 0},
                },
                "type": int(type_),
                "data": json.dumps(data),
                "createdTime": created.strftime("%Y-%m-%dT%H:%M:%S"),
            }
        )
        # Webhooks carry activities in their own shape (the webhooks page's examples).
        webhook_activity = {
            "User": {"Id": "0"},
            "Data": data,
            "Id": str(activity_id),
            "Type": str(int(type_)),
            "CreateDate": created.strftime("%d-%m-%Y %H:%M:%S"),
        }
        self.event(
            "Object",
            "OnNewActivity",
            {
                "Activities": {"Activity": webhook_activity},
                "Id": str(obj.id),
                "StreamId": str(obj.record["streamid"]),
                "SubStreamId": "0",
            },
        )

    def event(self, subscription: str, name: str, payload: dict[str, Any]) -> None:
        """Queue a webhook event in the outbox."""
        self.outbox.append({"subscription": subscription, "name": name, "payload": payload})
