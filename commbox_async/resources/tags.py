"""``cb.tags``: tags and tag groups."""

from __future__ import annotations

import builtins
from typing import Any

from .._exceptions import ConfigurationError
from .._response import to_raw_response
from ..models import Tag, TagGroup
from ._resource import APIResource, Id, require_int

__all__ = ["Tags", "TagsWithRawResponse"]


def _name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"a {what} needs a non-empty name")
    return name


class Tags(APIResource):
    """Tags (on conversations, users, messages) and their groups."""

    async def list(self) -> builtins.list[Tag]:
        """Every tag: ``GET /tags``."""
        envelope = await self._client._request("GET", "/tags")
        return self._list(envelope, Tag)

    async def create(
        self,
        name: str,
        *,
        tag_group_id: Id | None = None,
        object_tag: bool | None = None,
        user_tag: bool | None = None,
        child_tag: bool | None = None,
    ) -> int:
        """Create a tag: ``POST /tags`` with ``{"data": {"Name", "TagGroupId", "ObjectTag",
        "UserTag", "ChildTag"}}`` (unset ones left out). Returns the tag id."""
        body: dict[str, Any] = {"Name": _name(name, "tag")}
        if tag_group_id is not None:
            body["TagGroupId"] = require_int(tag_group_id, "tag_group_id")
        for key, value in (
            ("ObjectTag", object_tag),
            ("UserTag", user_tag),
            ("ChildTag", child_tag),
        ):
            if value is not None:
                body[key] = bool(value)
        envelope = await self._client._request("POST", "/tags", json={"data": body})
        return self._new_id(envelope, method="POST", path="/tags")

    async def update(
        self, tag_id: Id, *, name: str | None = None, tag_group_id: Id | None = None
    ) -> None:
        """Rename a tag or move it to a group: ``POST /tags/{TAG_ID}`` with
        ``{"data": {"Name", "Tag Group Id"}}`` (the spec's key, with spaces)."""
        body: dict[str, Any] = {}
        if name is not None:
            body["Name"] = _name(name, "tag")
        if tag_group_id is not None:
            body["Tag Group Id"] = require_int(tag_group_id, "tag_group_id")
        if not body:
            raise ConfigurationError("nothing to update: give name= and/or tag_group_id=")
        await self._client._request(
            "POST", "/tags/{tag_id}", path_params={"tag_id": tag_id}, json={"data": body}
        )

    async def delete(self, tag_id: Id) -> None:
        """Delete a tag: ``DELETE /tags/{TAG_ID}``."""
        await self._client._request("DELETE", "/tags/{tag_id}", path_params={"tag_id": tag_id})

    async def groups(self) -> builtins.list[TagGroup]:
        """Every tag group: ``GET /tags/groups``."""
        envelope = await self._client._request("GET", "/tags/groups")
        return self._list(envelope, TagGroup)

    async def create_group(self, name: str) -> int:
        """Create a tag group: ``POST /tags/groups`` with ``{"data": {"Name"}}``. Returns its id."""
        envelope = await self._client._request(
            "POST", "/tags/groups", json={"data": {"Name": _name(name, "tag group")}}
        )
        return self._new_id(envelope, method="POST", path="/tags/groups")

    async def update_group(self, group_id: Id, name: str) -> None:
        """Rename a tag group: ``POST /tags/groups/{TAGS_GROUP_ID}`` with ``{"data": {"Name"}}``."""
        await self._client._request(
            "POST",
            "/tags/groups/{group_id}",
            path_params={"group_id": group_id},
            json={"data": {"Name": _name(name, "tag group")}},
        )

    async def delete_group(self, group_id: Id) -> None:
        """Delete a tag group: ``DELETE /tags/groups/{TAGS_GROUP_ID}``."""
        await self._client._request(
            "DELETE", "/tags/groups/{group_id}", path_params={"group_id": group_id}
        )


class TagsWithRawResponse:
    """``cb.with_raw_response.tags``: each method of :class:`Tags`, returning an
    :class:`~commbox_async.APIResponse` around its usual value."""

    def __init__(self, resource: Tags) -> None:
        self.list = to_raw_response(resource.list)
        self.create = to_raw_response(resource.create)
        self.update = to_raw_response(resource.update)
        self.delete = to_raw_response(resource.delete)
        self.groups = to_raw_response(resource.groups)
        self.create_group = to_raw_response(resource.create_group)
        self.update_group = to_raw_response(resource.update_group)
        self.delete_group = to_raw_response(resource.delete_group)
