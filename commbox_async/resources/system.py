"""``cb.system`` and ``cb.stats``: platform status and stream statistics."""

from __future__ import annotations

from collections.abc import Mapping

from .._response import to_raw_response
from ..models import SlaExceptions, StreamStats, SystemStatus
from ._resource import APIResource, decode

__all__ = ["Stats", "StatsWithRawResponse", "System", "SystemWithRawResponse"]


class System(APIResource):
    """The platform itself."""

    async def status(self) -> SystemStatus:
        """Whether CommBox is up: ``GET /core/systemstatus`` (the envelope's ``status``,
        ``description``, ``response_time``; ``.operational`` is True for a 2xx status)."""
        envelope = await self._client._request("GET", "/core/systemstatus")
        return SystemStatus(
            status=envelope.envelope_status
            if envelope.envelope_status is not None
            else envelope.http_status,
            description=envelope.description,
            response_time=envelope.response_time,
        )


class Stats(APIResource):
    """Conversation counts per stream and status."""

    async def streams(self) -> list[StreamStats]:
        """Open conversations per stream, sub-stream and status: ``GET /stats/streams``
        (``moduleId``, ``streamId``, ``subStreamId``, ``statusId``, ``c``)."""
        envelope = await self._client._request("GET", "/stats/streams")
        return self._list(envelope, StreamStats)

    async def sla_exceptions(self) -> SlaExceptions:
        """SLA breaches per stream: ``GET /stats/streamsSLAExceptions``. CommBox sends a pair
        ``{"Item1": [...], "Item2": [...]}`` (the spec shows it as a list of one-key objects;
        both forms are read)."""
        envelope = await self._client._request("GET", "/stats/streamsSLAExceptions")
        data = envelope.data
        if isinstance(data, list):
            merged: dict[str, object] = {}
            for part in data:
                if isinstance(part, Mapping):
                    merged.update(part)
            data = merged
        result: SlaExceptions = decode(data or {}, SlaExceptions, max_depth=envelope.max_depth)
        return result


class StatsWithRawResponse:
    """``cb.with_raw_response.stats``: each method of :class:`Stats`, returning an
    :class:`~commbox_async.APIResponse` around its usual value."""

    def __init__(self, resource: Stats) -> None:
        self.streams = to_raw_response(resource.streams)
        self.sla_exceptions = to_raw_response(resource.sla_exceptions)


class SystemWithRawResponse:
    """``cb.with_raw_response.system``: each method of :class:`System`, returning an
    :class:`~commbox_async.APIResponse` around its usual value."""

    def __init__(self, resource: System) -> None:
        self.status = to_raw_response(resource.status)
