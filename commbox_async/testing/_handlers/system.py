"""The system's status and the stream statistics."""

from __future__ import annotations

from typing import Any

from .._state import FakeState
from .._wire import Described
from ._common import P, Q, Result, Routes


def _system_status(state: FakeState, p: P, q: Q, body: Any) -> Result:
    raise Described(200, "System is operational")


def _stats(state: FakeState, p: P, q: Q, body: Any) -> Result:
    counts: dict[tuple[int, int, int], int] = {}
    for o in state.objects.values():
        key = (o.record["streamid"], o.record["substreamid"], o.record["statusId"])
        counts[key] = counts.get(key, 0) + 1
    return 200, [
        {"moduleId": 14, "streamId": s, "subStreamId": sub, "statusId": st, "c": c}
        for (s, sub, st), c in sorted(counts.items())
    ]


def _sla(state: FakeState, p: P, q: Q, body: Any) -> Result:
    return 200, {"Item1": [], "Item2": []}


ROUTES: Routes = (
    ("GET", "/core/systemstatus", _system_status),
    ("GET", "/stats/streams", _stats),
    ("GET", "/stats/streamsSLAExceptions", _sla),
)
