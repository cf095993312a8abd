"""Users (customers and agents), their identities, managers (agents/admins), and the messages
users write in conversations: ``User`` and ``ObjectChild`` refer to each other, so they share
this module."""

from __future__ import annotations

from datetime import date, datetime

import attrs

from ._converter import JsonObject, Model, wire
from ._enums import ObjectType, StreamProviderType, UserPermission

__all__ = ["Manager", "ObjectChild", "User", "UserIdentity", "UserTag"]


@attrs.frozen(kw_only=True)
class UserIdentity(Model):
    """A user's identity on one channel (Developer Guide "User Identity").

    Wire names: ``Id``, ``StreamProviderId``, ``StreamProviderType``, ``StreamProviderEmail``,
    ``UserName``, ``FirstName``, ``LastName``, ``ThumbnailUrl``, ``NumObjects`` (any casing;
    the activities list writes the id as ``identityId``).
    """

    id: int | None = wire("Id", "identityId")
    user_id: int | None = wire("userId")
    stream_provider_id: str | None = wire("StreamProviderId")
    stream_provider_type: StreamProviderType | str | None = wire("StreamProviderType")
    stream_provider_email: str | None = wire("StreamProviderEmail")
    user_name: str | None = wire("UserName")
    first_name: str | None = wire("FirstName")
    last_name: str | None = wire("LastName")
    thumbnail_url: str | None = wire("ThumbnailUrl")
    num_objects: int | None = wire("NumObjects")
    content: JsonObject | None = wire("content")


@attrs.frozen(kw_only=True)
class UserTag(Model):
    """A tag on a user (Get User's ``userTags``, a JSON string on the wire): ``id``, ``name``,
    ``group_name``."""

    id: int | None = wire("id")
    name: str | None = wire("name")
    group_name: str | None = wire("group_name")


@attrs.frozen(kw_only=True)
class User(Model):
    """A customer or agent (Developer Guide "User").

    Wire names: ``Id``, ``UniqueId`` (``UniqueID``), ``Phone1``, ``Phone2``, ``Email``,
    ``FirstName`` (``first_name``), ``LastName``, ``Gender``, ``Locale``, ``Birthday`` (date
    only), ``NumIdentities`` (``numberIdentities``), ``IsManager``, ``Remarks``, ``Content``,
    ``Identity``, ``NumObjects``, ``ManagerId``; Get User adds ``permissionId``, ``userTags``
    (JSON in a string), ``teamId`` and ``identities``; Get Object nests the conversation's
    messages in the user as ``childs``.
    """

    id: int | None = wire("Id")
    unique_id: str | None = wire("UniqueId")
    phone1: str | None = wire("Phone1")
    phone2: str | None = wire("Phone2")
    email: str | None = wire("Email")
    first_name: str | None = wire("FirstName")
    last_name: str | None = wire("LastName")
    gender: str | None = wire("Gender")
    locale: str | None = wire("Locale")
    birthday: date | None = wire("Birthday")
    num_identities: int | None = wire("NumIdentities", "numberIdentities")
    is_manager: bool | None = wire("IsManager")
    remarks: str | None = wire("Remarks")
    content: JsonObject | None = wire("Content")
    identity: UserIdentity | None = wire("Identity")
    num_objects: int | None = wire("NumObjects")
    manager_id: int | None = wire("ManagerId")
    permission_id: UserPermission | None = wire("permissionId")
    user_tags: tuple[UserTag, ...] = wire("userTags", factory=tuple)
    team_id: int | None = wire("teamId")
    identities: tuple[UserIdentity, ...] = wire("identities", factory=tuple)
    children: tuple[ObjectChild, ...] = wire("childs", "Children", "Childs", factory=tuple)


@attrs.frozen(kw_only=True)
class ObjectChild(Model):
    """A message in a conversation (Developer Guide "Object Child"; Get Object's ``childs``).

    Wire names: ``Id``, ``Type``, ``IsManager``, ``CreatedTime`` (``CreateDate`` in webhooks),
    ``Message``, ``Content``, ``User``, and in Get Object ``object_id`` and
    ``streamProviderType``; webhooks add ``StreamProviderId``, ``ManagerId``, ``Snippet``.
    """

    id: int | None = wire("Id")
    object_id: int | None = wire("object_id")
    type: ObjectType | None = wire("Type")
    is_manager: bool | None = wire("IsManager")
    created_time: datetime | None = wire("CreatedTime", "CreateDate")
    message: str | None = wire("Message")
    content: JsonObject | None = wire("Content")
    stream_provider_id: str | None = wire("StreamProviderId")
    stream_provider_type: StreamProviderType | str | None = wire("StreamProviderType")
    manager_id: int | None = wire("ManagerId")
    snippet: str | None = wire("Snippet")
    user: User | None = wire("User")


@attrs.frozen(kw_only=True)
class Manager(Model):
    """An agent or admin: the Developer Guide's "Manager" load figures and the fields
    ``GET /managers/{MANAGER_ID}`` returns.

    Wire names: ``Id``, ``AsyncAssignedNoResponse``, ``AsyncAssignedInProccess`` (sic),
    ``SyncAssignedNoResponse``, ``SyncAssignedInProccess``, ``FaceToFaceStatus``,
    ``TotalAsyncAssigned``, ``TotalSyncAssigned``; and ``content``, ``identityId``,
    ``streamProviderId``, ``thumbnailUrl``, ``brandId``, ``permissionId``, ``firstName``,
    ``lastName``, ``email``, ``userName``, ``team`` (all team ids, comma-separated), ``teamId``,
    ``teamName``, ``profiles``,
    ``maxSyncObjectsAssignments``, ``maxAsyncObjectsAssignments``, ``multiReplyAccess``.
    """

    id: int | None = wire("Id")
    async_assigned_no_response: int | None = wire("AsyncAssignedNoResponse")
    async_assigned_in_process: int | None = wire(
        "AsyncAssignedInProccess", "AsyncAssignedInProcess"
    )
    sync_assigned_no_response: int | None = wire("SyncAssignedNoResponse")
    sync_assigned_in_process: int | None = wire("SyncAssignedInProccess", "SyncAssignedInProcess")
    face_to_face_status: bool | None = wire("FaceToFaceStatus")
    total_async_assigned: int | None = wire("TotalAsyncAssigned")
    total_sync_assigned: int | None = wire("TotalSyncAssigned")
    content: JsonObject | None = wire("content")
    identity_id: int | None = wire("identityId")
    stream_provider_id: str | None = wire("streamProviderId")
    thumbnail_url: str | None = wire("thumbnailUrl")
    brand_id: int | None = wire("brandId")
    permission_id: UserPermission | None = wire("permissionId", "Permission")
    first_name: str | None = wire("firstName")
    last_name: str | None = wire("lastName")
    email: str | None = wire("email")
    user_name: str | None = wire("userName")
    teams: str | None = wire("team")
    team_id: int | None = wire("teamId")
    team_name: str | None = wire("teamName")
    profiles: str | None = wire("profiles")
    max_sync_objects_assignments: int | None = wire("maxSyncObjectsAssignments")
    max_async_objects_assignments: int | None = wire("maxAsyncObjectsAssignments")
    multi_reply_access: str | None = wire("multiReplyAccess")
