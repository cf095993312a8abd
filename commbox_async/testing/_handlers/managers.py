"""Managers (agents): their details, stats, presence, profiles and assignments; and teams."""

from __future__ import annotations

from typing import Any

from .._state import Conversation, FakeState
from .._wire import HTTPError
from ._common import P, Q, Result, Routes, data, found, get, known, one

_MANAGER_FIELDS = {
    "firstname": "firstName",
    "lastname": "lastName",
    "email": "email",
    "isadmin": "isAdmin",
    "username": "userName",
    "teamid": "teamId",
    "permissionid": "permissionId",
}
_PRESENCE_TYPES = {1: "Active", 2: "Busy", 3: "Away"}


def _manager(state: FakeState, manager_id: str) -> dict[str, Any]:
    return found(state.managers, manager_id, "Manager")


def _apply_manager(manager: dict[str, Any], fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        if key.lower() == "password":
            continue  # accepted, never stored or returned
        if key.lower() not in _MANAGER_FIELDS:
            raise HTTPError(400, f"Bad Request: unknown manager field {key}")
        manager[_MANAGER_FIELDS[key.lower()]] = value


def _member(m: dict[str, Any]) -> dict[str, Any]:
    """A manager as team and profile listings show one."""
    return {
        "Id": m["id"],
        "FirstName": m.get("firstName"),
        "LastName": m.get("lastName"),
        "Permission": m.get("permissionId"),
        "Email": m.get("email"),
        "UserName": m.get("userName"),
        "TeamId": m.get("teamId", 0),
    }


def _assigned(state: FakeState, manager: dict[str, Any]) -> int:
    return sum(1 for o in state.objects.values() if o.record["assignedManagerId"] == manager["id"])


def _get_manager(state: FakeState, p: P, q: Q, body: Any) -> Result:
    return 200, _manager(state, p["manager"])


def _managers(state: FakeState, p: P, q: Q, body: Any) -> Result:
    return 200, list(state.managers.values())


def _create_manager(state: FakeState, p: P, q: Q, body: Any) -> Result:
    fields = data(body)
    if not get(fields, "UserName") or not get(fields, "Email"):
        raise HTTPError(400, "Bad Request: UserName and Email are required")
    manager_id = state.new_id()
    manager: dict[str, Any] = {"id": manager_id, "profiles": ""}
    _apply_manager(manager, fields)
    state.managers[manager_id] = manager
    return 200, {"id": manager_id}


def _update_manager(state: FakeState, p: P, q: Q, body: Any) -> Result:
    manager = _manager(state, p["manager"])
    _apply_manager(manager, data(body))
    return 200, {"id": manager["id"]}


def _delete_manager(state: FakeState, p: P, q: Q, body: Any) -> Result:
    manager = _manager(state, p["manager"])
    del state.managers[manager["id"]]
    return 200, {"id": manager["id"]}


def _manager_stats(state: FakeState, p: P, q: Q, body: Any) -> Result:
    manager = _manager(state, p["manager"])
    assigned = _assigned(state, manager)
    return 200, {
        "id": manager["id"],
        "AsyncAssignedNoResponse": assigned,
        "AsyncAssignedInProccess": 0,
        "SyncAssignedNoResponse": 0,
        "SyncAssignedInProccess": 0,
        "FaceToFaceStatus": False,
        "TotalAsyncAssigned": assigned,
        "TotalSyncAssigned": 0,
    }


def _presence(state: FakeState, manager_id: int) -> dict[str, Any]:
    type_id = state.presence.get(manager_id, 1)
    return {"presence_type": type_id, "type_id": type_id, "name": _PRESENCE_TYPES[type_id]}


def _get_presence(state: FakeState, p: P, q: Q, body: Any) -> Result:
    return 200, _presence(state, _manager(state, p["manager"])["id"])


def _set_presence(state: FakeState, p: P, q: Q, body: Any) -> Result:
    manager = _manager(state, p["manager"])
    if not known(p["activity"], _PRESENCE_TYPES):
        raise HTTPError(400, f"Bad Request: unknown presence type {p['activity']}")
    state.presence[manager["id"]] = int(p["activity"])
    return 200, _presence(state, manager["id"])


def _presence_types(state: FakeState, p: P, q: Q, body: Any) -> Result:
    return 200, [{"id": i, "name": n, "presenceType": i} for i, n in _PRESENCE_TYPES.items()]


def _profiles(state: FakeState, p: P, q: Q, body: Any) -> Result:
    return 200, list(state.profiles.values())


def _by_profile(state: FakeState, p: P, q: Q, body: Any) -> Result:
    found(state.profiles, p["profile"], "Profile")
    pid = int(p["profile"])
    return 200, [
        _member(m)
        for mid, m in state.managers.items()
        if pid in state.manager_profiles.get(mid, [])
    ]


def _sync_profiles(state: FakeState, manager: dict[str, Any]) -> list[dict[str, Any]]:
    ids = state.manager_profiles.get(manager["id"], [])
    manager["profiles"] = ",".join(str(i) for i in ids)
    return [state.profiles[i] for i in ids]


def _profile_ids(state: FakeState, values: list[str]) -> list[int]:
    ids: list[int] = []
    for value in values:
        for part in value.split(","):
            if not known(part.strip(), state.profiles):
                raise HTTPError(400, f"Bad Request: unknown profile {part}")
            ids.append(int(part))
    return ids


def _add_profiles(state: FakeState, p: P, q: Q, body: Any) -> Result:
    manager = _manager(state, p["manager"])
    if ("add" in q) == ("set" in q):
        raise HTTPError(400, "Bad Request: use exactly one of add or set")
    key = "add" if "add" in q else "set"
    ids = _profile_ids(state, q[key])
    current = [] if key == "set" else state.manager_profiles.get(manager["id"], [])
    state.manager_profiles[manager["id"]] = list(dict.fromkeys([*current, *ids]))
    return 200, _sync_profiles(state, manager)


def _remove_all_profiles(state: FakeState, p: P, q: Q, body: Any) -> Result:
    manager = _manager(state, p["manager"])
    state.manager_profiles[manager["id"]] = []
    _sync_profiles(state, manager)
    return 200, ""


def _remove_profile(state: FakeState, p: P, q: Q, body: Any) -> Result:
    manager = _manager(state, p["manager"])
    ids = state.manager_profiles.get(manager["id"], [])
    if not known(p["profile"], ids):
        raise HTTPError(404, f"Profile {p['profile']} not on manager {manager['id']}")
    ids.remove(int(p["profile"]))
    _sync_profiles(state, manager)
    return 200, ""


def _assignments(state: FakeState, p: P, q: Q, body: Any) -> Result:
    count = _assigned(state, _manager(state, p["manager"]))
    if not count:
        return 200, []
    return 200, [
        {
            "AssignedObjectsCount": count,
            "StreamTypeId": 14,
            "ModuleId": 14,
            "ModuleUniqueName": "sms",
        }
    ]


def _assignment_target(state: FakeState, p: P, q: Q) -> tuple[dict[str, Any], Conversation]:
    manager = _manager(state, p["manager"])
    object_id = one(q, "objectId")
    if object_id is None:
        raise HTTPError(400, "Bad Request: objectId is required")
    return manager, state.conversation(object_id)


def _assign(state: FakeState, p: P, q: Q, body: Any) -> Result:
    manager, obj = _assignment_target(state, p, q)
    obj.record["assignedManagerId"] = manager["id"]
    return 200, None


def _unassign(state: FakeState, p: P, q: Q, body: Any) -> Result:
    manager, obj = _assignment_target(state, p, q)
    if obj.record["assignedManagerId"] != manager["id"]:
        raise HTTPError(400, f"Bad Request: object {obj.id} is not assigned to {manager['id']}")
    obj.record["assignedManagerId"] = 0
    return 200, None


def _teams(state: FakeState, p: P, q: Q, body: Any) -> Result:
    name = (one(q, "Name") or "").lower()
    return 200, [{"teamId": i, "name": n} for i, n in state.teams.items() if name in n.lower()]


def _create_team(state: FakeState, p: P, q: Q, body: Any) -> Result:
    name = one(q, "Name")
    if not name:
        raise HTTPError(400, "Bad Request: Name is required")
    team_id = state.new_id()
    state.teams[team_id] = name
    return 200, {"id": team_id}


def _team(state: FakeState, team_id: str) -> int:
    found(state.teams, team_id, "Team")
    return int(team_id)


def _team_members(state: FakeState, p: P, q: Q, body: Any) -> Result:
    tid = _team(state, p["team"])
    return 200, [_member(m) for m in state.managers.values() if m.get("teamId") == tid]


def _update_team(state: FakeState, p: P, q: Q, body: Any) -> Result:
    tid = _team(state, p["team"])
    name = one(q, "Name")
    if name:
        state.teams[tid] = name
    return 200, ""


def _delete_team(state: FakeState, p: P, q: Q, body: Any) -> Result:
    del state.teams[_team(state, p["team"])]
    return 200, ""


# Order matters where two templates with as many parameters match one path (a tie on the
# literal-beats-parameter rule): the first one listed wins.
ROUTES: Routes = (
    ("GET", "/managers/{manager}", _get_manager),
    ("GET", "/managers", _managers),
    ("POST", "/managers", _create_manager),
    ("POST", "/managers/{manager}", _update_manager),
    ("DELETE", "/managers/{manager}", _delete_manager),
    ("GET", "/managers/{manager}/stats", _manager_stats),
    ("GET", "/managers/{manager}/presence", _get_presence),
    ("POST", "/managers/{manager}/presence/{activity}", _set_presence),
    ("GET", "/managers/presence", _presence_types),
    ("GET", "/managers/profiles", _profiles),
    ("GET", "/managers/profiles/{profile}", _by_profile),
    ("POST", "/managers/{manager}/profiles", _add_profiles),
    ("DELETE", "/managers/{manager}/profiles", _remove_all_profiles),
    ("DELETE", "/managers/{manager}/profiles/{profile}", _remove_profile),
    ("GET", "/managers/{manager}/assignments", _assignments),
    ("POST", "/managers/{manager}/assignments", _assign),
    ("DELETE", "/managers/{manager}/assignments", _unassign),
    ("GET", "/managers/teams", _teams),
    ("POST", "/managers/teams", _create_team),
    ("GET", "/managers/teams/{team}", _team_members),
    ("POST", "/managers/teams/{team}", _update_team),
    ("DELETE", "/managers/teams/{team}", _delete_team),
)
