"""Conversations (objects), activities, transcript, tags, indicators. Their messages
(``ObjectChild``) live in ``users`` beside ``User``, since each refers to the other."""

from __future__ import annotations

from datetime import datetime

import attrs

from ._converter import JsonObject, Model, wire
from ._enums import ObjectActivityType, ObjectStatusType, ObjectType, StreamProviderType
from .users import ObjectChild, User, UserIdentity

__all__ = [
    "Activity",
    "ActivityUser",
    "CustomIndicator",
    "ObjectActivityLog",
    "ObjectDetails",
    "ObjectRecord",
    "Tag",
    "Transcript",
]


@attrs.frozen(kw_only=True)
class ObjectRecord(Model):
    """A conversation as the Developer Guide's "Object" data structure describes it.

    Wire names: ``Id``, ``StreamId``, ``SubStreamId``, ``Type``, ``StatusId`` (``StatusID``),
    ``CreatedTime`` (``CreateDate``), ``FirstResponseTime``, ``UpdatedTime``, ``PriorityTime``,
    ``NumChilds``, ``IsManager``, ``NumTags``, ``Message``, ``Content``, ``User``; webhooks add
    ``StreamProviderId``, ``StreamProviderType``, ``ManagerId``, ``Snippet``, ``Children``.
    """

    id: int | None = wire("Id")
    stream_id: int | None = wire("StreamId")
    sub_stream_id: int | None = wire("SubStreamId")
    type: ObjectType | None = wire("Type")
    status_id: ObjectStatusType | None = wire("StatusId")
    created_time: datetime | None = wire("CreatedTime", "CreateDate")
    first_response_time: datetime | None = wire("FirstResponseTime")
    updated_time: datetime | None = wire("UpdatedTime")
    priority_time: datetime | None = wire("PriorityTime")
    num_children: int | None = wire("NumChilds", "NumChildren")
    is_manager: bool | None = wire("IsManager")
    num_tags: int | None = wire("NumTags")
    message: str | None = wire("Message")
    content: JsonObject | None = wire("Content")
    stream_provider_id: str | None = wire("StreamProviderId")
    stream_provider_type: StreamProviderType | str | None = wire("StreamProviderType")
    manager_id: int | None = wire("ManagerId")
    snippet: str | None = wire("Snippet")
    user: User | None = wire("User")
    children: tuple[ObjectChild, ...] = wire("Children", "childs", factory=tuple)


@attrs.frozen(kw_only=True)
class ObjectDetails(Model):
    """One conversation from ``GET /streams/{STREAM_ID}/objects/{OBJECT_ID}``.

    Wire names: ``objectId``, ``streamid``, ``substreamid`` (``substreamId`` in stream search),
    ``streamProviderId``, ``streamProviderType``, ``user_identity``, ``firstName``, ``lastName``,
    ``userStreamProviderId``, ``userStreamProviderType``, ``content``, ``message``,
    ``createdTime``, ``updatedTime``, ``closeTime`` (``closedTime``), ``firstResponseTime``,
    ``lastResponseTime``, ``priorityTime``, ``statusId``, ``assignedManagerId``,
    ``lastAssignedManagerId``, ``numTags``, ``numChilds``, ``type``, ``isManager``, ``user``
    (with ``childs`` inside, as the spec nests them), and ``childs`` / ``activityLog`` when
    sent at the top level.

    The newest message comes first, as CommBox sends it; :attr:`messages` finds the children
    wherever they were nested.
    """

    object_id: int | None = wire("objectId", "Id")
    stream_id: int | None = wire("streamid")
    sub_stream_id: int | None = wire("substreamid")
    stream_provider_id: str | None = wire("streamProviderId")
    stream_provider_type: StreamProviderType | str | None = wire("streamProviderType")
    user_identity: int | None = wire("user_identity")
    first_name: str | None = wire("firstName")
    last_name: str | None = wire("lastName")
    user_stream_provider_id: str | None = wire("userStreamProviderId")
    user_stream_provider_type: StreamProviderType | str | None = wire("userStreamProviderType")
    content: JsonObject | None = wire("content")
    message: str | None = wire("message")
    created_time: datetime | None = wire("createdTime")
    updated_time: datetime | None = wire("updatedTime")
    close_time: datetime | None = wire("closeTime", "closedTime")
    first_response_time: datetime | None = wire("firstResponseTime")
    last_response_time: datetime | None = wire("lastResponseTime")
    priority_time: datetime | None = wire("priorityTime")
    status_id: ObjectStatusType | None = wire("statusId")
    assigned_manager_id: int | None = wire("assignedManagerId")
    last_assigned_manager_id: int | None = wire("lastAssignedManagerId")
    num_tags: int | None = wire("numTags")
    num_children: int | None = wire("numChilds", "numChildren")
    type: ObjectType | None = wire("type")
    is_manager: bool | None = wire("isManager")
    user: User | None = wire("user")
    children: tuple[ObjectChild, ...] = wire("childs", "children", factory=tuple)
    activity_log: tuple[Activity, ...] = wire("activityLog", "activities", factory=tuple)

    @property
    def messages(self) -> tuple[ObjectChild, ...]:
        """The conversation's children, newest first, whether top-level or under ``user``."""
        if self.children:
            return self.children
        return self.user.children if self.user is not None else ()


@attrs.frozen(kw_only=True)
class ActivityUser(Model):
    """The user in an activity: ``id``, ``first_name``, ``last_name``, ``identity``."""

    id: int | None = wire("id")
    first_name: str | None = wire("first_name")
    last_name: str | None = wire("last_name")
    identity: UserIdentity | None = wire("identity")


@attrs.frozen(kw_only=True)
class Activity(Model):
    """One activity of a conversation (``GET /objects/{OBJECT_ID}/activities``, webhooks).

    Wire names: ``objectId``, ``Id``, ``type`` (ObjectActivityType), ``data`` (a JSON string on
    the wire, decoded into a dict), ``createdTime`` (``CreateDate`` in webhooks), ``user``.
    The webhooks module decodes ``data`` into a typed class per activity type.
    """

    object_id: int | None = wire("objectId")
    id: int | None = wire("Id")
    type: ObjectActivityType | None = wire("type")
    data: JsonObject | None = wire("data")
    created_time: datetime | None = wire("createdTime", "CreateDate")
    user: ActivityUser | None = wire("user")


@attrs.frozen(kw_only=True)
class ObjectActivityLog(Model):
    """An activity-log entry (Developer Guide "Object Activity Log"): ``Text``, ``Source``,
    ``ManagerId``."""

    text: str | None = wire("Text")
    source: str | None = wire("Source")
    manager_id: int | None = wire("ManagerId")


@attrs.frozen(kw_only=True)
class Transcript(Model):
    """``GET /streams/{STREAM_ID}/objects/{OBJECT_ID}/transcript``: ``objectId``, ``streamid``,
    ``substreamid``, ``trasncript`` (sic; ``transcript`` accepted too), ``user``."""

    object_id: int | None = wire("objectId")
    stream_id: int | None = wire("streamid")
    sub_stream_id: int | None = wire("substreamid")
    transcript: str | None = wire("trasncript", "transcript")
    user: User | None = wire("user")


@attrs.frozen(kw_only=True)
class Tag(Model):
    """A tag: ``Id``, ``Name``; in webhooks ``Action`` ("Add"/"Remove"); in ``GET /tags``
    ``identityId`` and ``streamProviderId`` as the spec shows them."""

    id: int | None = wire("Id")
    action: str | None = wire("Action")
    name: str | None = wire("Name")
    identity_id: str | None = wire("identityId")
    stream_provider_id: str | None = wire("streamProviderId")


@attrs.frozen(kw_only=True)
class CustomIndicator(Model):
    """An icon on the conversation page (Developer Guide "Object Custom Indicator").

    Wire names: ``IndicatorId``, ``DisplayClass``, ``Icon``, ``Title``, ``Link``. CommBox needs
    ``DisplayClass`` or ``Icon`` (or both); :meth:`validate` checks it before sending.
    """

    indicator_id: str | None = wire("IndicatorId")
    title: str | None = wire("Title")
    display_class: str | None = wire("DisplayClass")
    icon: str | None = wire("Icon")
    link: str | None = wire("Link")

    def validate(self) -> None:
        from .._exceptions import ConfigurationError

        if not self.indicator_id:
            raise ConfigurationError("CustomIndicator needs indicator_id (its unique name)")
        if not (self.display_class or self.icon):
            raise ConfigurationError(
                "CustomIndicator needs display_class or icon (or both), as CommBox requires"
            )
