"""``cb.users``: customers (users), their identities' conversations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NoReturn

from .._exceptions import ConfigurationError
from .._response import to_raw_response
from ..models import ObjectDetails, ObjectStatusType, StreamProviderType, User, UserInfo
from ._resource import APIResource, Id, Paginator, no_raw_form, require_int, require_model
from .streams import bool_param, status_list

__all__ = ["Users", "UsersWithRawResponse"]


class Users(APIResource):
    """Customers (users) and the conversations of their identities."""

    async def get(
        self,
        user_id: Id,
        *,
        stream_provider_id: str | None = None,
        stream_provider_type: StreamProviderType | int | None = None,
    ) -> User:
        """One user with identities and tags: ``GET /users/{USER_ID}`` (optional
        ``streamProviderId`` / ``streamProviderType``, sent together)."""
        if (stream_provider_id is None) != (stream_provider_type is None):
            raise ConfigurationError("stream_provider_id and stream_provider_type go together")
        envelope = await self._client._request(
            "GET",
            "/users/{user_id}",
            path_params={"user_id": user_id},
            params={
                "streamProviderId": stream_provider_id,
                "streamProviderType": None
                if stream_provider_type is None
                else int(StreamProviderType(stream_provider_type)),
            },
        )
        return self._single(envelope, User, method="GET", path="/users/{user_id}")

    async def update(self, user_id: Id, info: UserInfo) -> int:
        """Update a user's details: ``POST /users/{USER_ID}`` with ``{"data": {...}}`` (see
        :class:`~commbox_async.models.UserInfo` for the wire names). Returns the user id."""
        path = "/users/{user_id}"
        info = require_model(
            info, UserInfo, param="info", method="cb.users.update()", build="UserInfo(...)"
        )
        envelope = await self._client._request(
            "POST", path, path_params={"user_id": user_id}, json={"data": info.to_wire()}
        )
        return self._new_id(envelope, method="POST", path=path)

    def objects(
        self,
        user_identity_id: Id,
        *,
        stream_provider_id: str | None = None,
        stream_provider_type: StreamProviderType | int | None = None,
        stream_id: Id | None = None,
        sub_stream_id: Id | None = None,
        statuses: Sequence[ObjectStatusType | int] | None = None,
        order: Literal["createdtime", "closedtime", "prioritytime", "updatedtime"] | None = None,
        object_id: Id | None = None,
        module_id: int | None = None,
        include_children: bool | None = None,
        include_activity_log: bool | None = None,
        page_size: int = 100,
    ) -> Paginator[ObjectDetails]:
        """An identity's conversations: ``GET /users/identities/{USER_IDENTITY_ID}/objects``.

        Filters: ``streamProviderId``/``streamProviderType`` (together), ``stream``,
        ``subStream``, ``status`` (comma-separated), ``order``, ``objectId``, ``moduleId``,
        ``includeChilds``, ``includeActivityLog``; pages through ``pageNumber``/``pageSize``.
        Returns a :class:`Paginator` (``async for``, or ``.page(n)``).
        """
        if (stream_provider_id is None) != (stream_provider_type is None):
            raise ConfigurationError("stream_provider_id and stream_provider_type go together")
        params = {
            "streamProviderId": stream_provider_id,
            "streamProviderType": None
            if stream_provider_type is None
            else int(StreamProviderType(stream_provider_type)),
            "stream": None if stream_id is None else require_int(stream_id, "stream_id"),
            "subStream": None
            if sub_stream_id is None
            else require_int(sub_stream_id, "sub_stream_id"),
            "status": status_list(statuses),
            "order": order,
            "objectId": None if object_id is None else require_int(object_id, "object_id"),
            "moduleId": module_id,
            "includeChilds": bool_param(include_children),
            "includeActivityLog": bool_param(include_activity_log),
        }
        return self._paginate(
            "/users/identities/{user_identity_id}/objects",
            ObjectDetails,
            path_params={"user_identity_id": user_identity_id},
            params=params,  # the client leaves out the filters that are None
            page_size=page_size,
        )


class UsersWithRawResponse:
    """``cb.with_raw_response.users``: each method of :class:`Users`, returning an
    :class:`~commbox_async.APIResponse` around its usual value."""

    def __init__(self, resource: Users) -> None:
        self.get = to_raw_response(resource.get)
        self.update = to_raw_response(resource.update)

    @property
    def objects(self) -> NoReturn:
        raise no_raw_form("Users.objects")
