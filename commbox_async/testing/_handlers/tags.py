"""The account's tags and tag groups (tagging a conversation is in :mod:`.objects`)."""

from __future__ import annotations

from typing import Any

from .._state import FakeState
from .._wire import HTTPError
from ._common import P, Q, Result, Routes, data, found, get


def _tags(state: FakeState, p: P, q: Q, body: Any) -> Result:
    return 200, list(state.tags.values())


def _create_tag(state: FakeState, p: P, q: Q, body: Any) -> Result:
    fields = data(body)
    if not get(fields, "Name"):
        raise HTTPError(400, "Bad Request: Name is required")
    tag_id = state.new_id()
    state.tags[tag_id] = {
        "id": tag_id,
        "name": get(fields, "Name"),
        "groupId": get(fields, "TagGroupId"),
    }
    return 200, {"id": str(tag_id)}


def _tag(state: FakeState, tag_id: str) -> dict[str, Any]:
    return found(state.tags, tag_id, "Tag")


def _update_tag(state: FakeState, p: P, q: Q, body: Any) -> Result:
    tag = _tag(state, p["tag"])
    fields = data(body)
    if "Name" in fields:
        tag["name"] = fields["Name"]
    if "Tag Group Id" in fields:
        tag["groupId"] = fields["Tag Group Id"]
    return 200, {"id": None}


def _delete_tag(state: FakeState, p: P, q: Q, body: Any) -> Result:
    del state.tags[_tag(state, p["tag"])["id"]]
    return 200, {"id": None}


def _tag_groups(state: FakeState, p: P, q: Q, body: Any) -> Result:
    return 200, list(state.tag_groups.values())


def _create_group(state: FakeState, p: P, q: Q, body: Any) -> Result:
    name = get(data(body), "Name")
    if not name:
        raise HTTPError(400, "Bad Request: Name is required")
    group_id = state.new_id()
    state.tag_groups[group_id] = {"id": group_id, "name": name, "brandId": 1054}
    return 200, {"id": str(group_id)}


def _group(state: FakeState, group_id: str) -> dict[str, Any]:
    return found(state.tag_groups, group_id, "Tags group")


def _update_group(state: FakeState, p: P, q: Q, body: Any) -> Result:
    group = _group(state, p["group"])
    group["name"] = get(data(body), "Name") or group["name"]
    return 200, {"id": None}


def _delete_group(state: FakeState, p: P, q: Q, body: Any) -> Result:
    del state.tag_groups[_group(state, p["group"])["id"]]
    return 200, {"id": None}


ROUTES: Routes = (
    ("GET", "/tags", _tags),
    ("POST", "/tags", _create_tag),
    ("POST", "/tags/{tag}", _update_tag),
    ("DELETE", "/tags/{tag}", _delete_tag),
    ("GET", "/tags/groups", _tag_groups),
    ("POST", "/tags/groups", _create_group),
    ("POST", "/tags/groups/{group}", _update_group),
    ("DELETE", "/tags/groups/{group}", _delete_group),
)
