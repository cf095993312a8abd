"""Users (customers): their details, edits and identities, and an identity's conversations."""

from __future__ import annotations

import json
from typing import Any

from .._state import FakeState
from .._wire import HTTPError
from ._common import P, Q, Result, Routes, data, number
from .streams import filtered, page, search_record

_USER_FIELDS = {
    "uniqueid": "uniqueId",
    "firstname": "firstName",
    "lastname": "lastName",
    "phone1": "phone1",
    "phone2": "phone2",
    "email": "email",
    "remarks": "remarks",
}


def _user(state: FakeState, user_id: str) -> dict[str, Any]:
    if not user_id.isdecimal():
        raise HTTPError(404, f"User {user_id} not found")
    uid = int(user_id)
    mine = [o for o in state.objects.values() if o.record["user"].get("id") == uid]
    if not mine:
        raise HTTPError(404, f"User {user_id} not found")
    base = mine[0].record["user"]
    identities = {}
    for o in mine:
        r = o.record
        identities[r["user_identity"]] = {
            "id": r["user_identity"],
            "userId": uid,
            "numObjects": sum(1 for x in mine if x.record["user_identity"] == r["user_identity"]),
            "streamProviderId": r["userStreamProviderId"],
            "streamProviderType": r["userStreamProviderType"],
            "content": "{}",
        }
    user = {
        "id": uid,
        "firstName": base.get("firstName", ""),
        "lastName": base.get("lastName", ""),
        "phone1": base.get("phone1", ""),
        "email": base.get("email", ""),
        "uniqueId": base.get("uniqueId", ""),
        "remarks": base.get("remarks"),
        "content": base.get("content", "{}"),
        "numIdentities": len(identities),
        "numObjects": len(mine),
        "identities": list(identities.values()),
    }
    user.update(state.user_edits.get(uid, {}))
    return user


def _get_user(state: FakeState, p: P, q: Q, body: Any) -> Result:
    return 200, _user(state, p["user"])


def _update_user(state: FakeState, p: P, q: Q, body: Any) -> Result:
    _user(state, p["user"])
    uid = int(p["user"])
    edits = state.user_edits.setdefault(uid, {})
    for key, value in data(body).items():
        if key.lower() == "content":
            edits["content"] = json.dumps(value) if not isinstance(value, str) else value
        elif key.lower() in _USER_FIELDS:
            edits[_USER_FIELDS[key.lower()]] = value
        else:
            raise HTTPError(400, f"Bad Request: unknown user field {key}")
    return 200, {"Id": uid}


def _user_objects(state: FakeState, p: P, q: Q, body: Any) -> Result:
    if not p["identity"].isdecimal():
        raise HTTPError(400, "Bad Request: USER_IDENTITY_ID must be a number")
    identity = int(p["identity"])
    stream = number(q, "stream")
    candidates = (
        o
        for o in state.objects.values()
        if o.record["user_identity"] == identity and (not stream or o.record["streamid"] == stream)
    )
    return 200, [search_record(o, q) for o in page(filtered(candidates, q), q)]


ROUTES: Routes = (
    ("GET", "/users/{user}", _get_user),
    ("POST", "/users/{user}", _update_user),
    ("GET", "/users/identities/{identity}/objects", _user_objects),
)
