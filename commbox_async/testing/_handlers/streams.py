"""Stream search (and the filters, order and pages every conversation search shares), and a
stream's availability."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from .._state import Conversation, FakeState
from .._wire import HTTPError
from ._common import P, Q, Result, Routes, flag, number, one

#: The time-range form of stream search returns at most this many conversations.
TIME_RANGE_CAP = 100


def search_record(obj: Conversation, q: Q) -> dict[str, Any]:
    """A conversation as a search returns it (``streamId``, ``substreamId``, ``closedTime``:
    the spec's spellings for these endpoints)."""
    r = obj.record
    out = {
        "objectId": r["objectId"],
        "streamId": r["streamid"],
        "substreamId": r["substreamid"],
        "streamProviderId": r["streamProviderId"],
        "streamProviderType": r["streamProviderType"],
        "user_identity": r["user_identity"],
        "userStreamProviderId": r["userStreamProviderId"],
        "userStreamProviderType": r["userStreamProviderType"],
        "content": r["content"],
        "message": r["message"],
        "createdTime": r["createdTime"],
        "updatedTime": r["updatedTime"],
        "closedTime": r["closeTime"],
        "statusId": r["statusId"],
        "assignedManagerId": r["assignedManagerId"],
        "type": r["type"],
        "isManager": r["isManager"],
        "user": r["user"],
    }
    if flag(q, "includeChilds"):
        out["childs"] = list(reversed(obj.children))
    if flag(q, "includeActivityLog"):
        out["activityLog"] = obj.activities
    return out


def _statuses(q: Q) -> set[int] | None:
    statuses = one(q, "status")
    return {int(s) for s in statuses.split(",") if s.strip()} if statuses else None


def filtered(objects: Iterable[Conversation], q: Q) -> list[Conversation]:
    """The conversations with the asked ``status`` and ``subStream`` (0: any), in ``sort``
    order."""
    wanted = _statuses(q)
    sub = number(q, "subStream")
    found = [
        o
        for o in objects
        if (wanted is None or o.record["statusId"] in wanted)
        and (not sub or o.record["substreamid"] == sub)
    ]
    # Seeded conversations are never updated, so every order the spec lists (createdtime,
    # updatedtime, ...) sorts them by creation.
    found.sort(key=lambda o: (o.created, o.id), reverse=(one(q, "sort") or "desc") == "desc")
    return found


def page(items: list[Any], q: Q, *, cap: int | None = None) -> list[Any]:
    """The ``pageNumber``-th page of ``pageSize`` items (default 100; at most ``cap``)."""
    size = number(q, "pageSize") or 100
    if cap is not None:
        size = min(size, cap)
    index = number(q, "pageNumber") or 1
    if size < 1 or index < 1:
        raise HTTPError(400, "Bad Request: pageNumber and pageSize start at 1")
    return items[(index - 1) * size : index * size]


@attrs.frozen
class _StreamSearch:
    """What a stream search asks for: a time range, an identity, or a customer's identity
    (provider id and type), any of them together."""

    start: int | None
    end: int | None
    identity: int | None
    provider_id: str | None
    provider_type: str | None

    @classmethod
    def of(cls, q: Q) -> _StreamSearch:
        asked = cls(
            number(q, "unixStartTime"),
            number(q, "unixEndTime"),
            number(q, "userIdentityId"),
            one(q, "identityStreamProviderId"),
            one(q, "identityStreamProviderType"),
        )
        if (asked.start is None) != (asked.end is None):
            raise HTTPError(400, "Bad Request: unixStartTime and unixEndTime go together")
        if asked.start is None and asked.identity is None and not asked._by_customer:
            raise HTTPError(
                400, "Bad Request: a time range, an identity or userIdentityId is required"
            )
        return asked

    @property
    def _by_customer(self) -> bool:
        return self.provider_id is not None and self.provider_type is not None

    def select(self, objects: Iterable[Conversation]) -> Iterator[Conversation]:
        """The conversations that match: one filter per criterion asked."""
        found = iter(objects)
        for keep in self._filters():
            found = filter(keep, found)
        return found

    def _filters(self) -> Iterator[Callable[[Conversation], bool]]:
        if self.start is not None and self.end is not None:
            lo, hi = self.start, self.end
            yield lambda o: lo <= int(o.created) <= hi
        if self.identity is not None:
            identity = self.identity
            yield lambda o: o.record["user_identity"] == identity
        if self.provider_id is not None:
            yield self._of_customer

    def _of_customer(self, obj: Conversation) -> bool:
        return (
            obj.record["userStreamProviderId"] == self.provider_id
            and str(obj.record["userStreamProviderType"]) == self.provider_type
        )


def _stream_objects(state: FakeState, p: P, q: Q, body: Any) -> Result:
    stream = p["stream"]
    if stream not in state.streams:
        state.stream_ids(stream)
    search = _StreamSearch.of(q)
    found = filtered(search.select(state.objects[i] for i in state.streams[stream]), q)
    # CommBox: "Max: 100 objects" for a time range; "additional calls are required": pages.
    cap = TIME_RANGE_CAP if search.start is not None else None
    return 200, [search_record(o, q) for o in page(found, q, cap=cap)]


def _availability(state: FakeState, p: P, q: Q, body: Any) -> Result:
    if one(q, "ignoreAutomationExsistance") not in ("true", "false"):
        raise HTTPError(400, "Bad Request: ignoreAutomationExsistance is required")
    state.stream_ids(p["stream"])
    return 200, {"state": 1}


ROUTES: Routes = (
    ("GET", "/streams/{stream}/objects", _stream_objects),
    ("GET", "/streams/{stream}/streamavailability", _availability),
)
