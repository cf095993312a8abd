"""``cb.streams``: channels (streams), their availability, and searching their conversations."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timezone
from typing import Any, Literal, NoReturn

from .._exceptions import ConfigurationError
from .._response import to_raw_response
from ..models import ObjectDetails, ObjectStatusType, StreamAvailability, StreamProviderType
from ._resource import APIResource, Id, Paginator, no_raw_form, require_int

__all__ = [
    "Streams",
    "StreamsWithRawResponse",
    "MAX_PAGES_PER_SECOND",
    "TIME_RANGE_CAP",
    "TimeRange",
    "status_list",
    "to_unix",
    "bool_param",
]

logger = logging.getLogger("commbox_async")

#: The most conversations the time-range form of stream search returns for one window.
TIME_RANGE_CAP = 100
#: The most pages read within one second (100,000 conversations): a server handing out new
#: ids on every page cannot hold a walk for ever; the second is then reported withheld.
MAX_PAGES_PER_SECOND = 1_000

Sort = Literal["desc", "asc"]
Order = Literal["createdtime", "closedtime", "prioritytime", "updatedtime"]


def to_unix(value: datetime | int | float, name: str) -> int:
    """Unix seconds (UTC) from an aware datetime (naive means UTC) or a number."""
    if isinstance(value, bool):
        raise ConfigurationError(f"{name} must be a datetime or unix seconds, got a bool")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp())
    if isinstance(value, (int, float)):
        return int(value)
    raise ConfigurationError(f"{name} must be a datetime or unix seconds, got {value!r}")


def status_list(statuses: Sequence[ObjectStatusType | int] | None) -> str | None:
    """``status=1,2``: the comma-separated ObjectStatusType codes."""
    if statuses is None:
        return None
    if isinstance(statuses, (str, bytes)):
        raise ConfigurationError("statuses must be a sequence of ObjectStatusType values")
    return ",".join(str(int(ObjectStatusType(require_int(s, "statuses")))) for s in statuses)


def bool_param(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


class TimeRange:
    """The conversations of a stream within a time range (:meth:`Streams.objects_between`):
    async-iterable; after the walk, ``withheld`` lists the seconds whose conversations CommBox
    may not all have returned, however they were paged (empty when every one was listed)."""

    def __init__(
        self,
        stream: str,
        start: int,
        end: int,
        search: Callable[[int, int], Paginator[ObjectDetails]],
    ) -> None:
        self._stream = stream
        self.start = start
        self.end = end
        self._search = search
        self.withheld: list[int] = []

    async def __aiter__(self) -> AsyncIterator[ObjectDetails]:
        seen: set[int] = set()
        windows = [(self.start, self.end)]
        while windows:
            a, b = windows.pop()
            search = self._search(a, b)
            page = await search.page(1)
            if len(page) >= TIME_RANGE_CAP and b > a:
                mid = (a + b) // 2
                windows.append((mid + 1, b))  # popped second: oldest first
                windows.append((a, mid))
                continue
            number = 1
            while True:
                fresh = [obj for obj in page if obj.object_id is None or obj.object_id not in seen]
                if number > 1 and page and all(obj.object_id is None for obj in fresh):
                    # A full page, then one with nothing new that can be told apart from what
                    # was listed (an empty one ends paging: the second held exactly whole
                    # pages; one without ids may be the first again): CommBox does not page
                    # within this second, so it may hold more.
                    self._withhold(a, "filled a page and paging brought no more")
                    break
                for obj in fresh:
                    if obj.object_id is not None:
                        seen.add(obj.object_id)
                    yield obj
                if len(page) < TIME_RANGE_CAP:
                    break
                if number >= MAX_PAGES_PER_SECOND:
                    self._withhold(a, f"still filled pages after {number} pages")
                    break
                number += 1
                page = await search.page(number)

    def _withhold(self, second: int, what: str) -> None:
        self.withheld.append(second)
        logger.warning(
            "stream %s: the second %d %s; if it holds more conversations, CommBox did not "
            "list them",
            self._stream,
            second,
            what,
        )


class Streams(APIResource):
    """Streams (channels): availability and conversation search."""

    async def availability(
        self, stream_id: Id, *, ignore_automation_existence: bool = False
    ) -> StreamAvailability:
        """The channel's state: ``GET /streams/{STREAM_ID}/streamavailability`` with the
        required query ``ignoreAutomationExsistance`` (sic). ``state`` is a
        :class:`~commbox_async.models.StreamState` (0 not active, 1 available, 2 busy,
        3 unavailable)."""
        envelope = await self._client._request(
            "GET",
            "/streams/{stream_id}/streamavailability",
            path_params={"stream_id": stream_id},
            params={"ignoreAutomationExsistance": bool_param(ignore_automation_existence)},
        )
        return self._decode(envelope, StreamAvailability)

    def objects(
        self,
        stream_id: Id,
        *,
        start: datetime | int | None = None,
        end: datetime | int | None = None,
        user_identity_id: Id | None = None,
        identity_stream_provider_id: str | None = None,
        identity_stream_provider_type: StreamProviderType | int | None = None,
        sub_stream_id: Id | None = None,
        statuses: Sequence[ObjectStatusType | int] | None = None,
        sort: Sort | None = None,
        order: Order | None = None,
        time_filter: str | None = None,
        include_children: bool | None = None,
        include_activity_log: bool | None = None,
        page_size: int = 100,
    ) -> Paginator[ObjectDetails]:
        """Search a stream's conversations: ``GET /streams/{STREAM_ID}/objects``.

        CommBox needs one of: a time range (``start`` and ``end`` → ``unixStartTime`` /
        ``unixEndTime``; that form returns at most 100 conversations, see
        :meth:`objects_between` for more), an identity (``identity_stream_provider_id`` and
        ``identity_stream_provider_type``), or ``user_identity_id`` (``userIdentityId``); this
        is checked before sending. Other filters: ``sub_stream_id`` (``subStream``),
        ``statuses`` (``status``, comma-separated), ``sort`` (``desc``/``asc``), ``order``
        (``createdtime``, ``closedtime``, ``prioritytime``, ``updatedtime``), ``time_filter``
        (``timeFilter``), ``include_children`` (``includeChilds``), ``include_activity_log``
        (``includeActivityLog``), ``page_size`` (``pageSize``; pages via ``pageNumber``).

        Returns a :class:`Paginator`: ``async for obj in cb.streams.objects(...)`` walks every
        page lazily; ``await cb.streams.objects(...).page(2)`` fetches one.
        """
        params = self._search_params(
            start=start,
            end=end,
            user_identity_id=user_identity_id,
            identity_stream_provider_id=identity_stream_provider_id,
            identity_stream_provider_type=identity_stream_provider_type,
            sub_stream_id=sub_stream_id,
            statuses=statuses,
            sort=sort,
            order=order,
            time_filter=time_filter,
            include_children=include_children,
            include_activity_log=include_activity_log,
        )

        return self._paginate(
            "/streams/{stream_id}/objects",
            ObjectDetails,
            path_params={"stream_id": stream_id},
            params=params,
            page_size=page_size,
        )

    def objects_between(
        self,
        stream_id: Id,
        start: datetime | int,
        end: datetime | int,
        *,
        sub_stream_id: Id | None = None,
        statuses: Sequence[ObjectStatusType | int] | None = None,
        time_filter: str | None = None,
        include_children: bool | None = None,
        include_activity_log: bool | None = None,
    ) -> TimeRange:
        """Every conversation of a stream between two times, however many.

        The time-range search returns at most 100 conversations per window (both ends
        inclusive, whole seconds), so a window that comes back full is split in two and each
        half searched again, until every part is complete. A one-second window that is still
        full cannot be split: it is paged (``pageNumber``, as the spec says "additional calls
        are required"), until a page is short or empty (the second held exactly whole pages).
        Windows are walked oldest first and each conversation (with an id) is yielded once.
        If a page
        brings nothing new (nothing with an ``objectId`` not listed already: conversations
        without one cannot be told apart), CommBox does not page within that second and may be
        withholding some: a warning is logged, the page is not yielded and the second is
        listed in the result's ``withheld``; so it is after ``MAX_PAGES_PER_SECOND`` (1,000)
        full pages of one second.

        ``async for obj in cb.streams.objects_between(532, t0, t1)`` walks them lazily.
        """
        lo, hi = to_unix(start, "start"), to_unix(end, "end")
        if hi < lo:
            raise ConfigurationError(f"end ({hi}) is before start ({lo})")

        def search(a: int, b: int) -> Paginator[ObjectDetails]:
            return self.objects(
                stream_id,
                start=a,
                end=b,
                sub_stream_id=sub_stream_id,
                statuses=statuses,
                sort="asc",
                order="createdtime",
                time_filter=time_filter,
                include_children=include_children,
                include_activity_log=include_activity_log,
                page_size=TIME_RANGE_CAP,
            )

        return TimeRange(str(stream_id), lo, hi, search)

    @staticmethod
    def _search_params(
        *,
        start: datetime | int | None,
        end: datetime | int | None,
        user_identity_id: Id | None,
        identity_stream_provider_id: str | None,
        identity_stream_provider_type: StreamProviderType | int | None,
        sub_stream_id: Id | None,
        statuses: Sequence[ObjectStatusType | int] | None,
        sort: Sort | None,
        order: Order | None,
        time_filter: str | None,
        include_children: bool | None,
        include_activity_log: bool | None,
    ) -> dict[str, Any]:
        if (start is None) != (end is None):
            raise ConfigurationError("start and end go together (unixStartTime/unixEndTime)")
        if (identity_stream_provider_id is None) != (identity_stream_provider_type is None):
            raise ConfigurationError(
                "identity_stream_provider_id and identity_stream_provider_type go together"
            )
        if start is None and identity_stream_provider_id is None and user_identity_id is None:
            raise ConfigurationError(
                "stream search needs a time range (start, end), an identity "
                "(identity_stream_provider_id and _type) or user_identity_id"
            )
        if sort is not None and sort not in ("desc", "asc"):
            raise ConfigurationError(f"sort must be 'desc' or 'asc', got {sort!r}")
        if order is not None and order not in (
            "createdtime",
            "closedtime",
            "prioritytime",
            "updatedtime",
        ):
            raise ConfigurationError(
                f"order must be createdtime, closedtime, prioritytime or updatedtime, got {order!r}"
            )
        params: dict[str, Any] = {
            "userIdentityId": None
            if user_identity_id is None
            else require_int(user_identity_id, "user_identity_id"),
            "identityStreamProviderId": identity_stream_provider_id,
            "identityStreamProviderType": None
            if identity_stream_provider_type is None
            else int(StreamProviderType(identity_stream_provider_type)),
            "unixStartTime": None if start is None else to_unix(start, "start"),
            "unixEndTime": None if end is None else to_unix(end, "end"),
            "subStream": None
            if sub_stream_id is None
            else require_int(sub_stream_id, "sub_stream_id"),
            "sort": sort,
            "order": order,
            "includeChilds": bool_param(include_children),
            "includeActivityLog": bool_param(include_activity_log),
            "timeFilter": time_filter,
            "status": status_list(statuses),
        }
        if params["unixStartTime"] is not None and params["unixEndTime"] < params["unixStartTime"]:
            raise ConfigurationError("end is before start")
        return {k: v for k, v in params.items() if v is not None}


class StreamsWithRawResponse:
    """``cb.with_raw_response.streams``: each method of :class:`Streams`, returning an
    :class:`~commbox_async.APIResponse` around its usual value."""

    def __init__(self, resource: Streams) -> None:
        self.availability = to_raw_response(resource.availability)

    @property
    def objects(self) -> NoReturn:
        raise no_raw_form("Streams.objects")

    @property
    def objects_between(self) -> NoReturn:
        raise no_raw_form("Streams.objects_between")
