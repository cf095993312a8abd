"""Typed webhook events, and typed ``data`` for each activity type.

Every event has ``subscription`` and ``name`` as CommBox writes them ("Object", "OnNewChild"),
``brand`` when the XML form carries it, and ``raw`` (the parsed payload, so nothing is lost).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import attrs

from ..models import (
    JsonObject,
    Model,
    ObjectActivityType,
    ObjectChild,
    ObjectRecord,
    ObjectStatusType,
    Tag,
    User,
)
from ..models._converter import wire

__all__ = [
    "ACTIVITY_DATA",
    "ActivityData",
    "AmbiguousObjectEvent",
    "AmbiguousUserEvent",
    "AssignmentData",
    "AttachmentsData",
    "ChatUserExit",
    "ConversationDetails",
    "ConversationSummaryData",
    "DisallowedUploadData",
    "Event",
    "FollowUpData",
    "ForwardData",
    "ForwardReplyData",
    "FormSubmit",
    "InactivityLogoutData",
    "IntentUpdateData",
    "InvalidExtensionData",
    "InvalidSizeData",
    "ObjectAssign",
    "ObjectEvent",
    "ObjectNew",
    "ObjectNewActivity",
    "ObjectNewChild",
    "ObjectUnAssign",
    "ObjectUpdateTag",
    "ParticipantChangeData",
    "PublicityData",
    "RedactChildData",
    "RemarkData",
    "RoutedData",
    "SatisfactionSubmit",
    "StatusChangeData",
    "StreamChangeData",
    "TagAdd",
    "TagDelete",
    "TagEvent",
    "TagGroupAdd",
    "TagGroupDelete",
    "TagGroupUpdate",
    "TagUpdate",
    "TagUpdateData",
    "TargetStreamChangeData",
    "UnknownEvent",
    "UserEvent",
    "UserLogin",
    "UserLogout",
    "UserNew",
    "UserUpdate",
    "UserUpdateTag",
    "WebhookActivity",
]


# -- activity data, one class per activity type ------------------------------------------------


@attrs.frozen(kw_only=True)
class ActivityData(Model):
    """Base of the typed ``data`` of an activity; unknown fields stay in ``extra``."""


@attrs.frozen(kw_only=True)
class _RequestInfo(ActivityData):
    request_environment: Any = wire("requestEnvironment")
    request_ip: Any = wire("requestIp")


@attrs.frozen(kw_only=True)
class RemarkData(ActivityData):
    """Type 1, a new remark: ``text``."""

    text: str | None = wire("text")


@attrs.frozen(kw_only=True)
class StatusChangeData(_RequestInfo):
    """Type 2, a status change: ``statusId``."""

    status_id: ObjectStatusType | None = wire("statusId")


@attrs.frozen(kw_only=True)
class ForwardData(ActivityData):
    """Type 3, the conversation forwarded: ``message``, ``recipients``, ``allowEmailReply``,
    ``allowCustomerDetails``, ``attachments``."""

    message: str | None = wire("message")
    recipients: tuple[str, ...] = wire("recipients", factory=tuple)
    allow_email_reply: bool | None = wire("allowEmailReply")
    allow_customer_details: bool | None = wire("allowCustomerDetails")
    attachments: Any = wire("attachments")


@attrs.frozen(kw_only=True)
class ForwardReplyData(ActivityData):
    """Type 4, a reply to a forwarded conversation: ``message``, ``recipients``, ``attachments``."""

    message: str | None = wire("message")
    recipients: tuple[str, ...] = wire("recipients", factory=tuple)
    attachments: Any = wire("attachments")


@attrs.frozen(kw_only=True)
class StreamChangeData(_RequestInfo):
    """Type 5, the conversation moved to another channel."""

    old_object_stream_name: str | None = wire("oldObjectStreamName")
    old_object_stream_id: int | None = wire("oldObjectStreamId")
    old_object_substream_name: str | None = wire("oldObjectSubstreamName")
    new_object_stream_name: str | None = wire("newObjectStreamName")
    new_object_stream_id: int | None = wire("newObjectStreamId")
    new_object_substream_name: str | None = wire("newObjectSubstreamName")
    new_object_substream_id: int | None = wire("newObjectSubstreamId")


@attrs.frozen(kw_only=True)
class TargetStreamChangeData(StreamChangeData):
    """Type 20, a conversation arrived from another channel (same payload as type 5)."""


@attrs.frozen(kw_only=True)
class AssignmentData(ActivityData):
    """Type 6, a new manager assignment: ``managerId``, ``assignedManagerId``,
    ``assignedManagerUserName``."""

    manager_id: int | None = wire("managerId")
    assigned_manager_id: int | None = wire("assignedManagerId")
    assigned_manager_user_name: str | None = wire("assignedManagerUserName")


@attrs.frozen(kw_only=True)
class TagUpdateData(ActivityData):
    """Type 7, a tag added or removed: ``tagId``, ``objectId``, ``managerId``, ``isRemoveTag``,
    ``name``, ``group_name``."""

    tag_id: int | None = wire("tagId")
    object_id: int | None = wire("objectId")
    manager_id: int | None = wire("managerId")
    is_remove_tag: bool | None = wire("isRemoveTag")
    name: str | None = wire("name")
    group_name: str | None = wire("group_name")


@attrs.frozen(kw_only=True)
class FollowUpData(_RequestInfo):
    """Type 8, a follow-up: ``text``, ``scheduledTime``."""

    text: str | None = wire("text")
    scheduled_time: datetime | None = wire("scheduledTime")


@attrs.frozen(kw_only=True)
class IntentUpdateData(ActivityData):
    """Type 9, intents changed: ``intentIds``, ``objectId``, ``isRemoveIntent``, ``names``."""

    intent_ids: tuple[int, ...] = wire("intentIds", factory=tuple)
    object_id: int | None = wire("objectId")
    is_remove_intent: bool | None = wire("isRemoveIntent")
    names: tuple[str, ...] = wire("names", factory=tuple)


@attrs.frozen(kw_only=True)
class AttachmentsData(ActivityData):
    """Type 10, attachments updated: ``objectId``, ``managerId``, ``attachments`` (a list, or
    ``{"attachments": [...]}`` as the XML example nests it), ``attachmentType``."""

    object_id: int | None = wire("objectId")
    manager_id: int | None = wire("managerId")
    attachments: Any = wire("attachments")
    attachment_type: str | None = wire("attachmentType")

    @property
    def files(self) -> list[Mapping[str, Any]]:
        value = self.attachments
        if isinstance(value, Mapping):
            value = value.get("attachments", [])
        return [a for a in value or [] if isinstance(a, Mapping)]


@attrs.frozen(kw_only=True)
class RoutedData(ActivityData):
    """Type 11, the conversation routed by a rule."""

    original_stream_id: int | None = wire("originalStreamId")
    dest_stream_id: int | None = wire("destStreamId")
    dest_sub_stream_id: int | None = wire("destSubStreamId")
    changed_status_id: ObjectStatusType | None = wire("changedStatusId")
    tag_id: int | None = wire("tagId")
    tag_name: str | None = wire("tagName")


@attrs.frozen(kw_only=True)
class PublicityData(ActivityData):
    """Type 13, publicity changed: ``changePublicityToPublic``."""

    change_publicity_to_public: bool | None = wire("changePublicityToPublic")


@attrs.frozen(kw_only=True)
class _FileFailure(ActivityData):
    status: str | None = wire("status")
    description: str | None = wire("description")
    invalid_activity: int | None = wire("invalidActivity", "unValidActivity")


@attrs.frozen(kw_only=True)
class InvalidExtensionData(_FileFailure):
    """Type 15, a file with an unsupported extension: ``fileName``, ``fileExtension``."""

    file_name: str | None = wire("fileName")
    file_extension: str | None = wire("fileExtension")


@attrs.frozen(kw_only=True)
class InvalidSizeData(_FileFailure):
    """Type 16, a file too big: ``maxFileSizeAllow``."""

    max_file_size_allow: int | None = wire("maxFileSizeAllow")


@attrs.frozen(kw_only=True)
class DisallowedUploadData(_FileFailure):
    """Type 17, file upload not allowed."""


@attrs.frozen(kw_only=True)
class InactivityLogoutData(ActivityData):
    """Type 18, logged out for inactivity (no fields)."""


@attrs.frozen(kw_only=True)
class ParticipantChangeData(ActivityData):
    """Type 19, participants changed: ``action``, ``performingAgentId``, ``isAgent``,
    ``addedParticipantName``."""

    action: str | None = wire("action")
    performing_agent_id: int | None = wire("performingAgentId")
    is_agent: bool | None = wire("isAgent")
    added_participant_name: str | None = wire("addedParticipantName")


@attrs.frozen(kw_only=True)
class ConversationDetails(Model):
    """The ``conversationDetails`` of a conversation summary."""

    object_id: int | None = wire("objectId")
    created_time: datetime | None = wire("createdTime")
    first_response_time: datetime | None = wire("firstResponseTime")
    stream_name: str | None = wire("streamName")
    full_name: str | None = wire("fullName")
    summarized_by_commbox_ai: str | None = wire("summarizedByCommBoxAI")


@attrs.frozen(kw_only=True)
class ConversationSummaryData(ActivityData):
    """Type 21, an AI summary: ``customerDetails``, ``conversationDetails``, ``text``."""

    customer_details: dict[str, Any] | None = wire("customerDetails")
    conversation_details: ConversationDetails | None = wire("conversationDetails")
    text: str | None = wire("text")


@attrs.frozen(kw_only=True)
class RedactChildData(ActivityData):
    """Type 23, a message (or part of one) redacted (no fields)."""


#: The typed ``data`` class of each activity type the docs show.
ACTIVITY_DATA: dict[int, type[ActivityData]] = {
    ObjectActivityType.REMARK: RemarkData,
    ObjectActivityType.STATUS_CHANGE: StatusChangeData,
    ObjectActivityType.FORWARD: ForwardData,
    ObjectActivityType.FORWARD_REPLY: ForwardReplyData,
    ObjectActivityType.STREAM_CHANGE: StreamChangeData,
    ObjectActivityType.ASSIGN_CHANGE: AssignmentData,
    ObjectActivityType.UPDATE_OBJECT_TAG: TagUpdateData,
    ObjectActivityType.FOLLOW_UP: FollowUpData,
    ObjectActivityType.UPDATE_OBJECT_INTENT: IntentUpdateData,
    ObjectActivityType.ATTACHMENT: AttachmentsData,
    ObjectActivityType.RULE_EXECUTED: RoutedData,
    ObjectActivityType.UPDATE_OBJECT_PUBLICITY: PublicityData,
    ObjectActivityType.INVALID_EXTENSION_FILE: InvalidExtensionData,
    ObjectActivityType.INVALID_FILE_SIZE: InvalidSizeData,
    ObjectActivityType.DISALLOWED_FILE_UPLOAD: DisallowedUploadData,
    ObjectActivityType.INACTIVITY_LOGOUT: InactivityLogoutData,
    ObjectActivityType.PARTICIPANT_CHANGE: ParticipantChangeData,
    ObjectActivityType.TARGET_STREAM_CHANGE: TargetStreamChangeData,
    ObjectActivityType.CONVERSATION_SUMMARY: ConversationSummaryData,
    ObjectActivityType.REDACT_CHILD: RedactChildData,
}


@attrs.frozen(kw_only=True)
class WebhookActivity:
    """One activity in an OnNewActivity event. ``data`` is the typed class for ``type`` (see
    :data:`ACTIVITY_DATA`), or the raw dict for a type this library does not know."""

    id: int | None
    type: ObjectActivityType | None
    created: datetime | None
    user: User | None
    data: ActivityData | Mapping[str, Any] | str | None
    raw: Mapping[str, Any] = attrs.field(repr=False)


# -- events ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Event:
    """Base of every webhook event."""

    subscription: str
    name: str
    brand: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False)

    #: The (subscription, name) this class stands for; None for the catch-all kinds.
    KIND: ClassVar[tuple[str, str] | None] = None


@attrs.frozen(kw_only=True)
class ObjectEvent(Event):
    """An event about a conversation; ``object`` holds what the payload carries."""

    object: ObjectRecord

    @property
    def object_id(self) -> int | None:
        return self.object.id

    @property
    def stream_id(self) -> int | None:
        return self.object.stream_id

    @property
    def sub_stream_id(self) -> int | None:
        return self.object.sub_stream_id

    @property
    def user(self) -> User | None:
        return self.object.user

    @property
    def children(self) -> tuple[ObjectChild, ...]:
        return self.object.children


@attrs.frozen(kw_only=True)
class ObjectNew(ObjectEvent):
    """Object OnNew: a conversation was created."""

    KIND = ("Object", "OnNew")


@attrs.frozen(kw_only=True)
class ObjectNewChild(ObjectEvent):
    """Object OnNewChild: a message was added (``children``; the JSON form carries the message
    fields on the object itself)."""

    KIND = ("Object", "OnNewChild")


@attrs.frozen(kw_only=True)
class ObjectNewActivity(ObjectEvent):
    """Object OnNewActivity: ``activities`` (usually one), each with typed ``data``."""

    KIND = ("Object", "OnNewActivity")
    activities: tuple[WebhookActivity, ...] = ()

    @property
    def activity(self) -> WebhookActivity | None:
        return self.activities[0] if self.activities else None


@attrs.frozen(kw_only=True)
class ObjectUpdateTag(ObjectEvent):
    """Object OnUpdateTag: ``tags``, each with ``action`` "Add" or "Remove"."""

    KIND = ("Object", "OnUpdateTag")
    tags: tuple[Tag, ...] = ()


@attrs.frozen(kw_only=True)
class ObjectAssign(ObjectEvent):
    """Object OnAssign: the conversation was assigned."""

    KIND = ("Object", "OnAssign")


@attrs.frozen(kw_only=True)
class ObjectUnAssign(ObjectEvent):
    """Object OnUnAssign: the conversation was unassigned."""

    KIND = ("Object", "OnUnAssign")


@attrs.frozen(kw_only=True)
class AmbiguousObjectEvent(ObjectEvent):
    """A JSON object payload whose shape fits several kinds (``candidates``), received without
    being told which trigger it is. Register one callback URL per trigger to avoid it."""

    candidates: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class UserEvent(Event):
    """An event about a user (customer or agent)."""

    user: User
    tags: tuple[Tag, ...] = ()


@attrs.frozen(kw_only=True)
class UserNew(UserEvent):
    """User OnNew: a user was created."""

    KIND = ("User", "OnNew")


@attrs.frozen(kw_only=True)
class UserUpdate(UserEvent):
    """User OnUpdate: a user was updated."""

    KIND = ("User", "OnUpdate")


@attrs.frozen(kw_only=True)
class UserUpdateTag(UserEvent):
    """User OnUpdateTag: a user's tags changed (``tags``)."""

    KIND = ("User", "OnUpdateTag")


@attrs.frozen(kw_only=True)
class UserLogin(UserEvent):
    """User Login: an agent logged in."""

    KIND = ("User", "Login")


@attrs.frozen(kw_only=True)
class UserLogout(UserEvent):
    """User Logout: an agent logged out."""

    KIND = ("User", "Logout")


@attrs.frozen(kw_only=True)
class AmbiguousUserEvent(UserEvent):
    """A JSON user payload received without its trigger (OnNew, OnUpdate, Login and Logout all
    carry the same shape)."""

    candidates: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class SatisfactionSubmit(Event):
    """Satisfaction OnSubmit: ``object_id``, ``score``, ``description``."""

    KIND = ("Satisfaction", "OnSubmit")
    object_id: int | None = None
    score: int | None = None
    description: str | None = None


@attrs.frozen(kw_only=True)
class TagEvent(Event):
    """A change to the brand's tags (not a conversation's): ``tag_id``, ``group_id``, ``name``,
    ``is_object``, ``is_user``, ``type``, ``unit``, ``unit_validation_type``,
    ``unit_validation``, ``default_value``."""

    tag_id: int | None = None
    group_id: int | None = None
    tag_name: str | None = None
    is_object: bool | None = None
    is_user: bool | None = None
    tag_type: int | None = None
    unit: int | None = None
    unit_validation_type: int | None = None
    unit_validation: Any = None
    default_value: str | None = None


@attrs.frozen(kw_only=True)
class TagAdd(TagEvent):
    KIND = ("Tag", "OnAdd")


@attrs.frozen(kw_only=True)
class TagUpdate(TagEvent):
    KIND = ("Tag", "OnUpdate")


@attrs.frozen(kw_only=True)
class TagDelete(TagEvent):
    KIND = ("Tag", "OnDelete")


@attrs.frozen(kw_only=True)
class TagGroupAdd(TagEvent):
    KIND = ("Tag", "OnAddGroup")


@attrs.frozen(kw_only=True)
class TagGroupUpdate(TagEvent):
    KIND = ("Tag", "OnUpdateGroup")


@attrs.frozen(kw_only=True)
class TagGroupDelete(TagEvent):
    KIND = ("Tag", "OnDeleteGroup")


@attrs.frozen(kw_only=True)
class FormSubmit(Event):
    """Form OnSubmit: ``object_id``, ``form_url``, ``properties`` (the form's fields)."""

    KIND = ("Form", "OnSubmit")
    object_id: int | None = None
    form_url: str | None = None
    properties: JsonObject | None = None


@attrs.frozen(kw_only=True)
class ChatUserExit(Event):
    """Chat OnUserExit: the customer closed the chat: ``user_id``, ``object_id``."""

    KIND = ("Chat", "OnUserExit")
    user_id: int | None = None
    object_id: int | None = None


@attrs.frozen(kw_only=True)
class UnknownEvent(Event):
    """A well-formed event of a kind this library does not know; ``raw`` holds all of it."""
