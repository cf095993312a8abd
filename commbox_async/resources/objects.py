"""``cb.objects``: conversations (objects) and their messages (children)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._files import AttachmentInput
from .._response import to_raw_response
from ..models import (
    Activity,
    ActivityLogEntry,
    CustomIndicator,
    NewChild,
    NewObject,
    ObjectActivityType,
    ObjectDetails,
    ObjectStatusType,
    RemarkEntry,
    StreamChange,
    StreamProviderType,
    Transcript,
)
from ._resource import APIResource, Id, require_int, require_model

__all__ = ["Objects", "ObjectsWithRawResponse"]


def _child(value: object, method: str) -> NewChild:
    return require_model(
        value,
        NewChild,
        param="new_child",
        method=method,
        build="NewChild.from_agent/from_customer",
        instead="a NewObject starts a conversation: cb.objects.create()",
    )


class Objects(APIResource):
    """Conversations (objects) in streams (channels), and their messages (children)."""

    async def create(
        self,
        stream_id: Id,
        new_object: NewObject,
        *,
        files: Sequence[AttachmentInput] | None = None,
    ) -> int:
        """Create a conversation: ``POST /streams/{STREAM_ID}/objects``. Returns the object id.

        Without ``files`` the body is JSON ``{"data": {...}}`` (see :class:`NewObject` for the
        wire names). With ``files`` (paths, bytes, open binary files or
        :class:`~commbox_async.Attachment`) it is ``multipart/form-data``: a ``data`` field with
        the JSON string of the unwrapped object and one ``file`` field per attachment. Files
        stream from disk; missing or unreadable ones fail before anything is sent.
        """
        require_model(
            new_object,
            NewObject,
            param="new_object",
            method="cb.objects.create()",
            build="NewObject.email/sms/sms_many/whatsapp_template/chat",
            instead="a NewChild is a message in a conversation: cb.objects.create_child()",
        ).validate()
        path = "/streams/{stream_id}/objects"
        body = new_object.to_wire()
        if files:
            envelope = await self._client._request(
                "POST",
                path,
                path_params={"stream_id": stream_id},
                data={"data": json.dumps(body, ensure_ascii=False)},
                files=files,
            )
        else:
            envelope = await self._client._request(
                "POST", path, path_params={"stream_id": stream_id}, json={"data": body}
            )
        return self._new_id(envelope, method="POST", path=path)

    async def create_child(self, stream_id: Id, object_id: Id, new_child: NewChild) -> int:
        """Add a message to a conversation:
        ``POST /streams/{STREAM_ID}/objects/{OBJECT_ID}/child``. Returns the child id.

        Build ``new_child`` with :meth:`NewChild.from_agent` (sent to the customer) or
        :meth:`NewChild.from_customer` (shown to the agent).
        """
        _child(new_child, "cb.objects.create_child()").validate()
        path = "/streams/{stream_id}/objects/{object_id}/child"
        envelope = await self._client._request(
            "POST",
            path,
            path_params={"stream_id": stream_id, "object_id": object_id},
            json={"data": new_child.to_wire()},
        )
        return self._new_id(envelope, method="POST", path=path)

    async def create_child_for_provider(
        self,
        stream_id: Id,
        stream_provider_id: str,
        stream_provider_type: StreamProviderType | int,
        new_child: NewChild,
    ) -> int:
        """Add a message to the conversation of an identity:
        ``POST /streams/{STREAM_ID}/objects/{STREAM_PROVIDER_ID}/{STREAM_PROVIDER_TYPE}/child``.

        ``stream_provider_id`` is the customer's email or phone as the provider knows it, and
        ``stream_provider_type`` its :class:`StreamProviderType`. Returns the child id.
        """
        _child(new_child, "cb.objects.create_child_for_provider()").validate()
        path = "/streams/{stream_id}/objects/{stream_provider_id}/{stream_provider_type}/child"
        envelope = await self._client._request(
            "POST",
            path,
            path_params={
                "stream_id": stream_id,
                "stream_provider_id": stream_provider_id,
                "stream_provider_type": int(StreamProviderType(stream_provider_type)),
            },
            json={"data": new_child.to_wire()},
        )
        return self._new_id(envelope, method="POST", path=path)

    async def get(
        self,
        stream_id: Id,
        object_id: Id,
        *,
        include_children: bool = False,
        include_activity_log: bool = False,
    ) -> ObjectDetails:
        """One conversation: ``GET /streams/{STREAM_ID}/objects/{OBJECT_ID}``.

        ``include_children`` sends ``includeChilds=true`` (otherwise CommBox returns only the
        last message); ``include_activity_log`` sends ``includeActivityLog=true``. The stream id
        may be the encrypted one. Children come newest first.
        """
        path = "/streams/{stream_id}/objects/{object_id}"
        params: dict[str, Any] = {}
        if include_children:
            params["includeChilds"] = "true"
        if include_activity_log:
            params["includeActivityLog"] = "true"
        envelope = await self._client._request(
            "GET",
            path,
            path_params={"stream_id": stream_id, "object_id": object_id},
            params=params or None,
        )
        return self._single(envelope, ObjectDetails, method="GET", path=path)

    async def activities(
        self, object_id: Id, activity_type: ObjectActivityType | int
    ) -> list[Activity]:
        """A conversation's activities of one type:
        ``GET /objects/{OBJECT_ID}/activities?activityType=N`` (e.g. 1 for remarks)."""
        envelope = await self._client._request(
            "GET",
            "/objects/{object_id}/activities",
            path_params={"object_id": object_id},
            params={"activityType": int(ObjectActivityType(activity_type))},
        )
        return list(self._decode(envelope, tuple[Activity, ...]))

    async def transcript(self, stream_id: Id, object_id: Id) -> Transcript:
        """The conversation as text with a link to it:
        ``GET /streams/{STREAM_ID}/objects/{OBJECT_ID}/transcript`` (wire field ``trasncript``)."""
        path = "/streams/{stream_id}/objects/{object_id}/transcript"
        envelope = await self._client._request(
            "GET", path, path_params={"stream_id": stream_id, "object_id": object_id}
        )
        return self._single(envelope, Transcript, method="GET", path=path)

    async def set_status(self, object_id: Id, status: ObjectStatusType | int) -> None:
        """Set the conversation's status: ``POST /objects/{OBJECT_ID}/status/{STATUS_ID}``."""
        await self._client._request(
            "POST",
            "/objects/{object_id}/status/{status_id}",
            path_params={
                "object_id": object_id,
                "status_id": int(ObjectStatusType(require_int(status, "status"))),
            },
        )

    async def set_content(self, object_id: Id, content: Mapping[str, Any]) -> None:
        """Set the conversation's extended properties: ``POST /objects/{OBJECT_ID}/content``
        with body ``{"data": {...content}}``."""
        await self._client._request(
            "POST",
            "/objects/{object_id}/content",
            path_params={"object_id": object_id},
            json={"data": dict(content)},
        )

    async def add_activity_log(
        self,
        object_id: Id,
        text: str,
        *,
        source: str | None = None,
        manager_id: int | None = None,
    ) -> None:
        """Add an activity-log entry: ``POST /objects/{OBJECT_ID}/activitylog`` with
        ``{"data": {"Text", "Source", "ManagerId"}}``."""
        entry = ActivityLogEntry(text=text, source=source, manager_id=manager_id)
        await self._client._request(
            "POST",
            "/objects/{object_id}/activitylog",
            path_params={"object_id": object_id},
            json={"data": entry.to_wire()},
        )

    async def add_remark(self, object_id: Id, text: str, *, manager_id: int | None = None) -> None:
        """Add a remark: ``POST /objects/{OBJECT_ID}/remarks`` with
        ``{"data": {"Text", "ManagerId"}}``."""
        entry = RemarkEntry(text=text, manager_id=manager_id)
        await self._client._request(
            "POST",
            "/objects/{object_id}/remarks",
            path_params={"object_id": object_id},
            json={"data": entry.to_wire()},
        )

    async def set_indicator(self, object_id: Id, indicator: CustomIndicator) -> None:
        """Set a custom indicator icon: ``POST /objects/{OBJECT_ID}/indicators`` with
        ``{"data": {"IndicatorId", "Title", "DisplayClass", "Icon", "Link"}}``. CommBox needs
        ``DisplayClass`` or ``Icon``; that is checked before sending."""
        require_model(
            indicator,
            CustomIndicator,
            param="indicator",
            method="cb.objects.set_indicator()",
            build="CustomIndicator(indicator_id=..., title=..., icon=...)",
        ).validate()
        await self._client._request(
            "POST",
            "/objects/{object_id}/indicators",
            path_params={"object_id": object_id},
            json={"data": indicator.to_wire()},
        )

    async def delete_indicator(self, object_id: Id, indicator_id: Id) -> None:
        """Remove a custom indicator: ``DELETE /objects/{OBJECT_ID}/indicators/{INDICATOR_ID}``
        (the ``IndicatorId`` it was set with)."""
        await self._client._request(
            "DELETE",
            "/objects/{object_id}/indicators/{indicator_id}",
            path_params={"object_id": object_id, "indicator_id": indicator_id},
        )

    async def remove_tag(self, stream_id: Id, object_id: Id, tag_id: Id) -> None:
        """Remove a tag from a conversation:
        ``DELETE /streams/{STREAM_ID}/objects/{OBJECT_ID}/tags/{TAG_ID}``."""
        await self._client._request(
            "DELETE",
            "/streams/{stream_id}/objects/{object_id}/tags/{tag_id}",
            path_params={"stream_id": stream_id, "object_id": object_id, "tag_id": tag_id},
        )

    async def set_tag(self, stream_id: Id, object_id: Id, tag_id: Id) -> None:
        """Tag a conversation: ``POST /streams/{STREAM_ID}/objects/{OBJECT_ID}/tags/{TAG_ID}``."""
        await self._client._request(
            "POST",
            "/streams/{stream_id}/objects/{object_id}/tags/{tag_id}",
            path_params={"stream_id": stream_id, "object_id": object_id, "tag_id": tag_id},
        )

    async def move(
        self, object_id: Id, stream_id: Id, sub_stream_id: Id | None = 0
    ) -> StreamChange | None:
        """Route a conversation to another stream: ``PATCH /objects/{OBJECT_ID}/stream`` with
        ``{"data": {"streamId", "subStreamId"}}``.

        Numeric ids only (CommBox rejects encrypted ones here; refused before sending).
        ``sub_stream_id=0`` is the target's main channel; ``None`` leaves ``subStreamId`` out.
        Returns the new placement, or None when CommBox reports nothing changed.
        """
        body: dict[str, Any] = {"streamId": require_int(stream_id, "stream_id")}
        if sub_stream_id is not None:
            body["subStreamId"] = require_int(sub_stream_id, "sub_stream_id")
        envelope = await self._client._request(
            "PATCH",
            "/objects/{object_id}/stream",
            path_params={"object_id": require_int(object_id, "object_id")},
            json={"data": body},
        )
        if not isinstance(envelope.data, Mapping) or not envelope.data:
            return None
        return self._decode(envelope, StreamChange)


class ObjectsWithRawResponse:
    """``cb.with_raw_response.objects``: each method of :class:`Objects`, returning an
    :class:`~commbox_async.APIResponse` around its usual value."""

    def __init__(self, resource: Objects) -> None:
        self.create = to_raw_response(resource.create)
        self.create_child = to_raw_response(resource.create_child)
        self.create_child_for_provider = to_raw_response(resource.create_child_for_provider)
        self.get = to_raw_response(resource.get)
        self.activities = to_raw_response(resource.activities)
        self.transcript = to_raw_response(resource.transcript)
        self.set_status = to_raw_response(resource.set_status)
        self.set_content = to_raw_response(resource.set_content)
        self.add_activity_log = to_raw_response(resource.add_activity_log)
        self.add_remark = to_raw_response(resource.add_remark)
        self.set_indicator = to_raw_response(resource.set_indicator)
        self.delete_indicator = to_raw_response(resource.delete_indicator)
        self.remove_tag = to_raw_response(resource.remove_tag)
        self.set_tag = to_raw_response(resource.set_tag)
        self.move = to_raw_response(resource.move)
