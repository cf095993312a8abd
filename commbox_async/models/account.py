"""The account around the conversations: stream state and stats, agents' presence, profiles,
assignments, teams, tag groups; and the bodies that create or change agents and users."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from ._converter import Model, wire
from ._enums import ModuleType, ObjectStatusType, OpenIntEnum, UserPermission

__all__ = [
    "ManagerAssignment",
    "ManagerData",
    "PresenceState",
    "PresenceType",
    "Profile",
    "SlaExceptions",
    "StreamAvailability",
    "StreamChange",
    "StreamState",
    "StreamStats",
    "SystemStatus",
    "TagGroup",
    "Team",
    "UserInfo",
]


@attrs.frozen(kw_only=True)
class SystemStatus(Model):
    """``GET /core/systemstatus``: the envelope's ``status``, ``description`` and
    ``response_time`` (CommBox sends no ``data``)."""

    status: int | None = wire("status")
    description: str | None = wire("description")
    response_time: str | None = wire("response_time")

    @property
    def operational(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class StreamState(OpenIntEnum):
    """A stream's availability (``state`` of Get Stream Availability)."""

    NOT_ACTIVE = 0
    AVAILABLE = 1
    BUSY = 2
    UNAVAILABLE = 3


@attrs.frozen(kw_only=True)
class StreamAvailability(Model):
    """``GET /streams/{STREAM_ID}/streamavailability``: ``state``."""

    state: StreamState | None = wire("state")


@attrs.frozen(kw_only=True)
class StreamChange(Model):
    """``PATCH /objects/{OBJECT_ID}/stream`` when it moved the conversation: ``streamId``,
    ``subStreamId``, ``updatedTime``."""

    stream_id: int | None = wire("streamId")
    sub_stream_id: int | None = wire("subStreamId")
    updated_time: datetime | None = wire("updatedTime")


@attrs.frozen(kw_only=True)
class StreamStats(Model):
    """One row of ``GET /stats/streams``: ``moduleId``, ``streamId``, ``subStreamId``,
    ``statusId`` and ``c`` (the number of conversations in that status)."""

    module_id: ModuleType | None = wire("moduleId")
    stream_id: int | None = wire("streamId")
    sub_stream_id: int | None = wire("subStreamId")
    status_id: ObjectStatusType | None = wire("statusId")
    count: int | None = wire("c")


@attrs.frozen(kw_only=True)
class SlaExceptions(Model):
    """``GET /stats/streamsSLAExceptions``: the two lists CommBox sends as ``Item1`` and
    ``Item2`` (a serialised pair; the spec does not say what tells them apart)."""

    item1: tuple[StreamStats, ...] = wire("Item1", factory=tuple)
    item2: tuple[StreamStats, ...] = wire("Item2", factory=tuple)


@attrs.frozen(kw_only=True)
class PresenceState(Model):
    """An agent's current presence (``GET/POST /managers/{MANAGER_ID}/presence``):
    ``presence_type``, ``type_id``, ``name``."""

    presence_type: int | None = wire("presence_type")
    type_id: int | None = wire("type_id")
    name: str | None = wire("name")


@attrs.frozen(kw_only=True)
class PresenceType(Model):
    """One of ``GET /managers/presence``: ``id``, ``name``, ``presenceType``."""

    id: int | None = wire("id")
    name: str | None = wire("name")
    presence_type: int | None = wire("presenceType")


@attrs.frozen(kw_only=True)
class Profile(Model):
    """An agent profile (``GET /managers/profiles``): ``id``, ``name``, ``UniqueName``."""

    id: int | None = wire("id")
    name: str | None = wire("name")
    unique_name: str | None = wire("UniqueName")


@attrs.frozen(kw_only=True)
class ManagerAssignment(Model):
    """One row of ``GET /managers/{MANAGER_ID}/assignments``: ``AssignedObjectsCount``,
    ``StreamTypeId``, ``ModuleId``, ``ModuleUniqueName``."""

    assigned_objects_count: int | None = wire("AssignedObjectsCount")
    stream_type_id: int | None = wire("StreamTypeId")
    module_id: ModuleType | None = wire("ModuleId")
    module_unique_name: str | None = wire("ModuleUniqueName")


@attrs.frozen(kw_only=True)
class Team(Model):
    """A team (``GET /managers/teams``): ``teamId``, ``name``."""

    team_id: int | None = wire("teamId", "id")
    name: str | None = wire("name")


@attrs.frozen(kw_only=True)
class TagGroup(Model):
    """A tag group (``GET /tags/groups``): ``id``, ``name``, ``brandId``."""

    id: int | None = wire("id")
    name: str | None = wire("name")
    brand_id: int | None = wire("brandId")


@attrs.frozen(kw_only=True)
class ManagerData(Model):
    """Body of Create Manager / Update Manager (``POST /managers[/{MANAGER_ID}]``), inside
    ``{"data": ...}``: ``FirstName``, ``LastName``, ``Email``, ``IsAdmin``, ``Password``,
    ``UserName``, ``TeamId``, ``PermissionId``. The password never appears in a repr."""

    first_name: str | None = wire("FirstName")
    last_name: str | None = wire("LastName")
    email: str | None = wire("Email")
    is_admin: bool | None = wire("IsAdmin")
    password: str | None = wire("Password", secret=True)
    user_name: str | None = wire("UserName")
    team_id: int | None = wire("TeamId")
    permission_id: UserPermission | None = wire("PermissionId")


@attrs.frozen(kw_only=True)
class UserInfo(Model):
    """Body of Update User (``POST /users/{USER_ID}``), inside ``{"data": ...}``: ``UniqueId``,
    ``FirstName``, ``LastName``, ``Phone1``, ``Phone2``, ``Email``, ``Remarks``, ``Content``
    (the account's custom fields)."""

    unique_id: str | None = wire("UniqueId")
    first_name: str | None = wire("FirstName")
    last_name: str | None = wire("LastName")
    phone1: str | None = wire("Phone1")
    phone2: str | None = wire("Phone2")
    email: str | None = wire("Email")
    remarks: str | None = wire("Remarks")
    content: dict[str, Any] | None = wire("Content")
