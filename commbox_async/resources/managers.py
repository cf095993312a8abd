"""``cb.managers`` and ``cb.teams``: agents and admins, their presence, profiles, assignments
and teams."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from .._exceptions import ConfigurationError
from .._response import to_raw_response
from ..models import (
    Manager,
    ManagerAssignment,
    ManagerData,
    PresenceState,
    PresenceType,
    Profile,
    Team,
)
from ._resource import APIResource, Id, require_int, require_model

__all__ = ["Managers", "ManagersWithRawResponse", "Teams", "TeamsWithRawResponse"]


def _manager(value: object, method: str) -> ManagerData:
    return require_model(
        value, ManagerData, param="manager", method=method, build="ManagerData(first_name=...)"
    )


class Managers(APIResource):
    """Agents and admins (managers)."""

    async def list(self) -> builtins.list[Manager]:
        """Every agent and admin: ``GET /managers``."""
        envelope = await self._client._request("GET", "/managers")
        return self._list(envelope, Manager)

    async def get(self, manager_id: Id) -> Manager:
        """One agent or admin: ``GET /managers/{MANAGER_ID}``."""
        path = "/managers/{manager_id}"
        envelope = await self._client._request("GET", path, path_params={"manager_id": manager_id})
        return self._single(envelope, Manager, method="GET", path=path)

    async def create(self, manager: ManagerData) -> int:
        """Create an agent or admin: ``POST /managers`` with ``{"data": {"FirstName",
        "LastName", "Email", "IsAdmin", "Password", "UserName", "TeamId", "PermissionId"}}``.
        Returns the new manager id."""
        manager = _manager(manager, "cb.managers.create()")
        envelope = await self._client._request(
            "POST", "/managers", json={"data": manager.to_wire()}
        )
        return self._new_id(envelope, method="POST", path="/managers")

    async def update(self, manager_id: Id, manager: ManagerData) -> int:
        """Change an agent or admin: ``POST /managers/{MANAGER_ID}`` with ``{"data": {...}}``
        (the fields of :class:`~commbox_async.models.ManagerData` that are set)."""
        path = "/managers/{manager_id}"
        manager = _manager(manager, "cb.managers.update()")
        envelope = await self._client._request(
            "POST", path, path_params={"manager_id": manager_id}, json={"data": manager.to_wire()}
        )
        return self._new_id(envelope, method="POST", path=path)

    async def delete(self, manager_id: Id) -> None:
        """Delete an agent or admin: ``DELETE /managers/{MANAGER_ID}``."""
        await self._client._request(
            "DELETE", "/managers/{manager_id}", path_params={"manager_id": manager_id}
        )

    async def stats(self, manager_id: Id) -> Manager:
        """An agent's current load: ``GET /managers/{MANAGER_ID}/stats`` (``id``,
        ``AsyncAssignedNoResponse``, ``AsyncAssignedInProccess``, ``SyncAssigned...``,
        ``FaceToFaceStatus``, ``TotalAsyncAssigned``, ``TotalSyncAssigned``)."""
        path = "/managers/{manager_id}/stats"
        envelope = await self._client._request("GET", path, path_params={"manager_id": manager_id})
        return self._single(envelope, Manager, method="GET", path=path)

    async def presence(self, manager_id: Id) -> PresenceState:
        """An agent's presence: ``GET /managers/{MANAGER_ID}/presence``."""
        path = "/managers/{manager_id}/presence"
        envelope = await self._client._request("GET", path, path_params={"manager_id": manager_id})
        return self._single(envelope, PresenceState, method="GET", path=path)

    async def set_presence(self, manager_id: Id, activity_id: Id) -> PresenceState:
        """Set an agent's presence: ``POST /managers/{MANAGER_ID}/presence/{ACTIVITY_ID}``
        (an id from :meth:`presence_types`). Returns the new presence."""
        path = "/managers/{manager_id}/presence/{activity_id}"
        envelope = await self._client._request(
            "POST",
            path,
            path_params={
                "manager_id": manager_id,
                "activity_id": require_int(activity_id, "activity_id"),
            },
        )
        return self._single(envelope, PresenceState, method="POST", path=path)

    async def presence_types(self) -> builtins.list[PresenceType]:
        """The account's presence types: ``GET /managers/presence``."""
        envelope = await self._client._request("GET", "/managers/presence")
        return self._list(envelope, PresenceType)

    async def by_profile(self, profile_id: Id) -> builtins.list[Manager]:
        """The agents with a profile: ``GET /managers/profiles/{PROFILE_ID}`` (``Id``,
        ``FirstName``, ``LastName``, ``Permission``, ``Email``, ``UserName``, ``TeamId``)."""
        envelope = await self._client._request(
            "GET", "/managers/profiles/{profile_id}", path_params={"profile_id": profile_id}
        )
        return self._list(envelope, Manager)

    async def profiles(self) -> builtins.list[Profile]:
        """The account's agent profiles: ``GET /managers/profiles``."""
        envelope = await self._client._request("GET", "/managers/profiles")
        return self._list(envelope, Profile)

    async def add_profiles(
        self,
        manager_id: Id,
        *,
        add: Sequence[Id] | None = None,
        set: Sequence[Id] | None = None,
    ) -> builtins.list[Profile]:
        """Add profiles to an agent (``add=``) or replace them (``set=``):
        ``POST /managers/{MANAGER_ID}/profiles?add=1&add=2`` (or ``set=``), exactly one of the
        two, as the spec requires. Returns the agent's profiles."""
        if (add is None) == (set is None):
            raise ConfigurationError("give exactly one of add= or set= (CommBox takes one)")
        key, ids = ("add", add) if add is not None else ("set", set)
        assert ids is not None
        values = [require_int(i, key) for i in ids]
        if not values:
            raise ConfigurationError(f"{key}= needs at least one profile id")
        envelope = await self._client._request(
            "POST",
            "/managers/{manager_id}/profiles",
            path_params={"manager_id": manager_id},
            params={key: values},
        )
        return self._list(envelope, Profile)

    async def remove_profile(self, manager_id: Id, profile_id: Id) -> None:
        """Remove one profile: ``DELETE /managers/{MANAGER_ID}/profiles/{PROFILE_ID}``."""
        await self._client._request(
            "DELETE",
            "/managers/{manager_id}/profiles/{profile_id}",
            path_params={"manager_id": manager_id, "profile_id": profile_id},
        )

    async def remove_all_profiles(self, manager_id: Id) -> None:
        """Remove every profile of an agent: ``DELETE /managers/{MANAGER_ID}/profiles``."""
        await self._client._request(
            "DELETE", "/managers/{manager_id}/profiles", path_params={"manager_id": manager_id}
        )

    async def assignments(self, manager_id: Id) -> builtins.list[ManagerAssignment]:
        """How many conversations an agent holds, per module:
        ``GET /managers/{MANAGER_ID}/assignments``."""
        envelope = await self._client._request(
            "GET", "/managers/{manager_id}/assignments", path_params={"manager_id": manager_id}
        )
        return self._list(envelope, ManagerAssignment)

    async def assign(self, manager_id: Id, object_id: Id) -> None:
        """Assign a conversation to an agent:
        ``POST /managers/{MANAGER_ID}/assignments?objectId=...``."""
        await self._client._request(
            "POST",
            "/managers/{manager_id}/assignments",
            path_params={"manager_id": manager_id},
            params={"objectId": require_int(object_id, "object_id")},
        )

    async def unassign(self, manager_id: Id, object_id: Id) -> None:
        """Take a conversation from an agent:
        ``DELETE /managers/{MANAGER_ID}/assignments?objectId=...``."""
        await self._client._request(
            "DELETE",
            "/managers/{manager_id}/assignments",
            path_params={"manager_id": manager_id},
            params={"objectId": require_int(object_id, "object_id")},
        )


class Teams(APIResource):
    """Teams of agents (``/managers/teams``)."""

    async def list(self, name: str) -> builtins.list[Team]:
        """Teams: ``GET /managers/teams?Name=...`` (the spec makes ``Name`` required)."""
        envelope = await self._client._request("GET", "/managers/teams", params={"Name": name})
        return self._list(envelope, Team)

    async def create(self, name: str) -> int:
        """Create a team: ``POST /managers/teams?Name=...``. Returns the team id."""
        if not name or not name.strip():
            raise ConfigurationError("a team needs a name")
        envelope = await self._client._request("POST", "/managers/teams", params={"Name": name})
        return self._new_id(envelope, method="POST", path="/managers/teams")

    async def members(self, team_id: Id) -> builtins.list[Manager]:
        """A team's agents: ``GET /managers/teams/{TEAM_ID}``."""
        envelope = await self._client._request(
            "GET", "/managers/teams/{team_id}", path_params={"team_id": team_id}
        )
        return self._list(envelope, Manager)

    async def update(self, team_id: Id, *, params: dict[str, str] | None = None) -> None:
        """Update a team: ``POST /managers/teams/{TEAM_ID}``.

        The spec documents no body or query fields for this call, so none are invented:
        ``params`` is sent as the query string as given (e.g. ``{"Name": "VIP"}``, the field
        Create Team uses).
        """
        await self._client._request(
            "POST",
            "/managers/teams/{team_id}",
            path_params={"team_id": team_id},
            params=params,
        )

    async def delete(self, team_id: Id) -> None:
        """Delete a team: ``DELETE /managers/teams/{TEAM_ID}``."""
        await self._client._request(
            "DELETE", "/managers/teams/{team_id}", path_params={"team_id": team_id}
        )


class ManagersWithRawResponse:
    """``cb.with_raw_response.managers``: each method of :class:`Managers`, returning an
    :class:`~commbox_async.APIResponse` around its usual value."""

    def __init__(self, resource: Managers) -> None:
        self.list = to_raw_response(resource.list)
        self.get = to_raw_response(resource.get)
        self.create = to_raw_response(resource.create)
        self.update = to_raw_response(resource.update)
        self.delete = to_raw_response(resource.delete)
        self.stats = to_raw_response(resource.stats)
        self.presence = to_raw_response(resource.presence)
        self.set_presence = to_raw_response(resource.set_presence)
        self.presence_types = to_raw_response(resource.presence_types)
        self.by_profile = to_raw_response(resource.by_profile)
        self.profiles = to_raw_response(resource.profiles)
        self.add_profiles = to_raw_response(resource.add_profiles)
        self.remove_profile = to_raw_response(resource.remove_profile)
        self.remove_all_profiles = to_raw_response(resource.remove_all_profiles)
        self.assignments = to_raw_response(resource.assignments)
        self.assign = to_raw_response(resource.assign)
        self.unassign = to_raw_response(resource.unassign)


class TeamsWithRawResponse:
    """``cb.with_raw_response.teams``: each method of :class:`Teams`, returning an
    :class:`~commbox_async.APIResponse` around its usual value."""

    def __init__(self, resource: Teams) -> None:
        self.list = to_raw_response(resource.list)
        self.create = to_raw_response(resource.create)
        self.members = to_raw_response(resource.members)
        self.update = to_raw_response(resource.update)
        self.delete = to_raw_response(resource.delete)
