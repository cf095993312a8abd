"""FakeCommBox: a stateful, in-memory CommBox for tests and demos.

It answers in CommBox's envelope, with ids shaped like CommBox's, the documented status codes,
a server-side rate limit and fault injection. Use it in-process (``fake.client()`` or
``fake.transport()``, no sockets) or as a real server (``commbox fake-server --port N``).
Everything under ``/_fake/`` is the fake's own inspection API, not CommBox's.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Container, Iterable, Mapping, MutableMapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, unquote

import anyio
import attrs
import httpx

from .._client import AsyncCommBox
from .._extras import missing_extra
from ..models import ObjectActivityType, ObjectStatusType

__all__ = ["FAULT_KINDS", "FakeCommBox", "RequestRecord"]

#: Fault kinds, and whether the request is processed before the fault strikes.
FAULT_KINDS: dict[str, bool] = {
    "500": True,  # processed, then an error: the duplicate trap for a naive retry
    "502": False,
    "503": False,
    "drop_before": False,  # the connection fails before the request is processed
    "lost_after": True,  # processed, then the response is lost
    "slow": True,  # processed after a delay
    "truncated": True,  # processed, the body is cut short
    "html": False,  # a proxy's HTML error page
}
DEFAULT_FAULTS = ("500", "502", "503", "drop_before", "lost_after", "slow")
FIRST_ID = 3377699720568713  # CommBox ids are large int64s, as in the webhooks page
BASE_URL = "https://fake.commbox.test"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ConnectionDropped(Exception):
    """Raised inside the app to make the in-process transport drop the connection."""

    def __init__(self, processed: bool) -> None:
        super().__init__("processed" if processed else "not processed")
        self.processed = processed


@attrs.define
class RequestRecord:
    """One request the fake received: for assertions in tests."""

    method: str
    path: str
    query: str
    status: int
    fault: str | None
    processed: bool
    body: Any = None
    at: float = attrs.field(factory=time.time)


@attrs.define
class _Object:
    id: int
    stream: str
    record: dict[str, Any]
    children: list[dict[str, Any]] = attrs.field(factory=list)
    activities: list[dict[str, Any]] = attrs.field(factory=list)
    activity_log: list[dict[str, Any]] = attrs.field(factory=list)
    remarks: list[dict[str, Any]] = attrs.field(factory=list)
    indicators: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    tags: list[int] = attrs.field(factory=list)
    attachments: list[dict[str, Any]] = attrs.field(factory=list)
    created: float = attrs.field(factory=time.time)  # unix seconds, for time-range search
    context: dict[str, Any] = attrs.field(factory=dict)  # automation variables


class _HTTPError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope(
    data: Any = None, status: int = 200, description: str = "Operation successful"
) -> dict[str, Any]:
    return {
        "status": str(status),
        "description": description,
        "response_time": _now(),
        "data": data,
    }


def _require_fake_extra() -> None:
    """The fake is an ASGI app on Starlette: say which ``pip install`` brings it now, rather
    than fail at the first request."""
    try:
        import starlette.requests  # noqa: F401
    except ImportError as exc:
        raise missing_extra(exc, extra="fake", what="FakeCommBox") from None


class FakeCommBox:
    """An in-memory CommBox.

    - ``token``: the only Bearer token accepted (default: any non-empty one).
    - ``streams``: a fixed set of stream ids; others are 404 (default: created on first use).
    - ``rate_limit`` (requests/s) and ``burst``: a server-side limit answering 429 with
      ``Retry-After``.
    - ``fault_rate``, ``faults``, ``seed``: inject faults at random, reproducibly; or script them
      with :meth:`fail_next`. Kinds: see :data:`FAULT_KINDS`.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        streams: Iterable[int | str] | None = None,
        rate_limit: float | None = None,
        burst: int | None = None,
        fault_rate: float = 0.0,
        faults: Iterable[str] = DEFAULT_FAULTS,
        seed: int | None = None,
        slow_seconds: float = 0.05,
        managers: Iterable[Mapping[str, Any]] | None = None,
    ) -> None:
        _require_fake_extra()
        self.token = token
        self.fixed_streams = {str(s) for s in streams} if streams is not None else None
        self.slow_seconds = slow_seconds
        self.configure(
            rate_limit=rate_limit, burst=burst, fault_rate=fault_rate, faults=faults, seed=seed
        )
        self._default_managers = (
            [dict(m) for m in managers] if managers is not None else [_DEFAULT_MANAGER]
        )
        self.reset()

    # -- configuration and state ---------------------------------------------------------------

    def configure(
        self,
        *,
        rate_limit: float | None = None,
        burst: int | None = None,
        fault_rate: float | None = None,
        faults: Iterable[str] | None = None,
        seed: int | None = None,
    ) -> None:
        """Change the rate limit and random faults (also ``POST /_fake/config``)."""
        if fault_rate is not None:
            if not 0.0 <= fault_rate <= 1.0:
                raise ValueError(f"fault_rate must be within 0..1, got {fault_rate}")
            self.fault_rate = fault_rate
        if faults is not None:
            kinds = tuple(faults)
            unknown = set(kinds) - set(FAULT_KINDS)
            if unknown:
                raise ValueError(
                    f"unknown fault kinds {sorted(unknown)}; known: {sorted(FAULT_KINDS)}"
                )
            self.faults = kinds
        self._random = random.Random(seed)  # noqa: S311 - reproducible test faults, not crypto
        self.rate_limit = rate_limit
        self.burst = burst if burst is not None else max(1, math.ceil(rate_limit or 1))
        self._tokens = float(self.burst)
        self._last = time.monotonic()

    def reset(self) -> None:
        """Forget every object, request and event (also ``POST /_fake/reset``)."""
        self.objects: dict[int, _Object] = {}
        self.streams: dict[str, list[int]] = {s: [] for s in (self.fixed_streams or ())}
        # An encrypted stream id stands for a numeric one, which records and webhooks carry.
        self._stream_numbers: dict[str, int] = {}
        self.managers: dict[int, dict[str, Any]] = {
            int(m["id"]): dict(m) for m in self._default_managers
        }
        self.requests: list[RequestRecord] = []
        self.outbox: list[dict[str, Any]] = []
        # The rest of the account (see _fake_api): users' edits, teams, tags, sends.
        self.user_edits: dict[int, dict[str, Any]] = {}
        self.teams: dict[int, str] = {431: "VIP"}
        self.profiles: dict[int, dict[str, Any]] = {
            1: {"id": 1, "name": "Sales", "UniqueName": "sales"},
            2: {"id": 2, "name": "Support", "UniqueName": "support"},
        }
        self.manager_profiles: dict[int, list[int]] = {}
        self.presence: dict[int, int] = {}
        self.tags: dict[int, dict[str, Any]] = {}
        self.tag_groups: dict[int, dict[str, Any]] = {}
        self.sms_sent: list[dict[str, Any]] = []
        self.whatsapp_sent: list[dict[str, Any]] = []
        self.campaigns: list[dict[str, Any]] = []
        self.media: list[dict[str, Any]] = []
        self._script: deque[tuple[str, str | None]] = deque()
        self._ids = itertools.count(FIRST_ID)

    def fail_next(self, kind: str, *, times: int = 1, path: str | None = None) -> None:
        """Script the next ``times`` requests (matching ``path`` if given) to fail with ``kind``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(FAULT_KINDS)}")
        for _ in range(times):
            self._script.append((kind, path))

    def state(self) -> dict[str, Any]:
        """Everything the fake holds, as JSON (also ``GET /_fake/state``)."""
        return {
            "streams": {
                s: [self._object_state(self.objects[i]) for i in ids]
                for s, ids in self.streams.items()
            },
            "managers": list(self.managers.values()),
            "requests": len(self.requests),
            "outbox": len(self.outbox),
        }

    @staticmethod
    def _object_state(obj: _Object) -> dict[str, Any]:
        return {
            "id": obj.id,
            "record": obj.record,
            "children": obj.children,
            "status": obj.record["statusId"],
            "content": obj.record["content"],
            "activity_log": obj.activity_log,
            "remarks": obj.remarks,
            "indicators": list(obj.indicators.values()),
            "tags": obj.tags,
            "attachments": obj.attachments,
        }

    def add_conversation(
        self,
        stream_id: int | str,
        *,
        message: str = "hello",
        created: datetime | float | None = None,
        children: int = 0,
        status: int = 1,
        user_stream_provider_id: str = "972500000000",
        user_identity: int | None = None,
    ) -> int:
        """Seed a conversation directly (no request, no event): for search and export tests.
        ``created`` sets its creation time; ``children`` adds that many customer messages."""
        from ._fake_api import seed_conversation

        return seed_conversation(
            self,
            str(stream_id),
            message=message,
            created=created,
            children=children,
            status=status,
            user_stream_provider_id=user_stream_provider_id,
            user_identity=user_identity,
        )

    def all_objects(self) -> list[dict[str, Any]]:
        """Every conversation's record (the shape Get Object returns, without children)."""
        return [o.record for o in self.objects.values()]

    # -- webhooks ------------------------------------------------------------------------------

    def webhook_bodies(self, *, format: str = "json") -> list[tuple[str, str, bytes]]:
        """The outbox as webhook bodies: (subscription, name, body) in CommBox's JSON form
        (``{"payload": ...}``) or XML form (``<Event Subscription= Name= Brand=>``)."""
        out = []
        for event in self.outbox:
            sub, name, payload = event["subscription"], event["name"], event["payload"]
            if format == "json":
                body = json.dumps({"payload": payload}).encode()
            elif format == "xml":
                body = _event_xml(sub, name, payload)
            else:
                raise ValueError(f"format must be 'json' or 'xml', got {format!r}")
            out.append((sub, name, body))
        return out

    async def deliver(self, router: Any, *, format: str = "json", clear: bool = True) -> int:
        """Parse every outbox event as CommBox would send it and dispatch it into a
        :class:`~commbox_async.webhooks.WebhookRouter`; return how many were delivered."""
        from ..webhooks import parse_event

        bodies = self.webhook_bodies(format=format)
        for sub, name, body in bodies:
            await router.dispatch(parse_event(body, subscription=sub, name=name))
        if clear:
            self.outbox.clear()
        return len(bodies)

    async def deliver_to(
        self,
        url: str,
        *,
        format: str = "json",
        clear: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> list[int]:
        """POST every outbox event to a callback URL (one route per trigger:
        ``{url}/{subscription}/{name}``, lower-cased); return the statuses. ``transport`` lets a
        test deliver into an ASGI app without sockets."""
        statuses = []
        ctype = "application/json" if format == "json" else "application/xml"
        async with httpx.AsyncClient(transport=transport) as http:
            for sub, name, body in self.webhook_bodies(format=format):
                response = await http.post(
                    f"{url.rstrip('/')}/{sub.lower()}/{name.lower()}",
                    content=body,
                    headers={"content-type": ctype},
                )
                statuses.append(response.status_code)
        if clear:
            self.outbox.clear()
        return statuses

    # -- clients -------------------------------------------------------------------------------

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport that calls the fake in-process (no sockets, no lifespan)."""
        return _FakeTransport(self)

    def client(self, **options: Any) -> AsyncCommBox:
        """An :class:`AsyncCommBox` wired to this fake (throttle off unless asked)."""
        options.setdefault("rate_limit", None)
        return AsyncCommBox(
            token=options.pop("token", self.token or "fake-token"),
            base_url=options.pop("base_url", BASE_URL),
            transport=self.transport(),
            **options,
        )

    # -- the ASGI app --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # supported, never required
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        from starlette.requests import Request

        request = Request(scope, receive)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        path = raw_path.decode("latin-1").split("?", 1)[0]
        method = scope["method"]
        query = scope.get("query_string", b"").decode("latin-1")
        if path.startswith("/_fake/"):
            status, body = await self._inspect(method, path, request)
            await _send_json(send, status, body)
            return
        await self._handle_api(method, path, query, request, send)

    async def _handle_api(
        self, method: str, path: str, query: str, request: Any, send: Send
    ) -> None:
        record = RequestRecord(
            method=method, path=path, query=query, status=0, fault=None, processed=False
        )
        self.requests.append(record)
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not token.strip() or (self.token is not None and token != self.token):
            record.status = 401
            await _send_json(send, 401, envelope(None, 401, "Unauthorized"))
            return
        retry_after = self._take_token()
        if retry_after is not None:
            record.status = 429
            await _send_json(
                send,
                429,
                envelope(None, 429, "Too Many Requests"),
                headers={"retry-after": str(math.ceil(retry_after))},
            )
            return
        fault = self._pick_fault(path)
        record.fault = fault
        if fault in ("502", "503"):
            record.status = int(fault)
            await _send_json(send, int(fault), envelope(None, int(fault), "Service unavailable"))
            return
        if fault == "html":
            record.status = 502
            await _send_raw(
                send, 502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"
            )
            return
        if fault == "drop_before":
            await _drop(send, processed=False)
            return
        if fault == "slow":
            await anyio.sleep(self.slow_seconds)
        try:
            handler, params = self._route(method, path)
            record.body = await _read_body(request)
            status, data = await handler(self, params, parse_qs(query), record.body)
            body = envelope(data, status)
        except _HTTPError as exc:
            status, body = exc.status, envelope(None, exc.status, exc.description)
        record.status = status
        record.processed = 200 <= status < 300
        if fault == "500":
            record.status = 500
            await _send_json(send, 500, envelope(None, 500, "Operation failed"))
        elif fault == "lost_after":
            await _drop(send, processed=True)
        elif fault == "truncated":
            payload = json.dumps(body).encode()
            await _send_raw(send, status, payload[: max(1, len(payload) // 2)], "application/json")
        else:
            await _send_json(send, status, body)

    def _take_token(self) -> float | None:
        if self.rate_limit is None:
            return None
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate_limit)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return (1 - self._tokens) / self.rate_limit

    def _pick_fault(self, path: str) -> str | None:
        for i, (kind, only) in enumerate(self._script):
            if only is None or only == path:
                del self._script[i]
                return kind
        if self.fault_rate and self._random.random() < self.fault_rate:
            return self._random.choice(self.faults)
        return None

    def _route(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        known_path = False
        best: tuple[int, Handler, dict[str, str]] | None = None
        for route_method, pattern, handler in _ROUTES:
            m = pattern.fullmatch(path)
            if m is None:
                continue
            known_path = True
            # A literal segment beats a parameter (/managers/teams over /managers/{manager}).
            if route_method == method and (best is None or len(m.groupdict()) < best[0]):
                best = (len(m.groupdict()), handler, m.groupdict())
        if best is not None:
            return best[1], {k: unquote(v) for k, v in best[2].items()}
        if known_path:
            raise _HTTPError(501, f"Not Implemented: {method} is not supported on {path}")
        raise _HTTPError(404, f"Not found: {path}")

    # -- inspection API ------------------------------------------------------------------------

    async def _inspect(self, method: str, path: str, request: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/_fake/state":
            return 200, self.state()
        if method == "GET" and path == "/_fake/requests":
            return 200, [attrs.asdict(r) for r in self.requests]
        if method == "POST" and path == "/_fake/reset":
            self.reset()
            return 200, {"reset": True}
        if method == "POST" and path == "/_fake/config":
            try:
                config = json.loads(await request.body() or b"{}")
                script = config.pop("script", [])
                self.configure(**config)
                for kind in script:
                    self.fail_next(kind)
            except (ValueError, TypeError) as exc:
                return 400, {"error": str(exc)}
            return 200, {"configured": True}
        return 404, {"error": f"no fake endpoint {method} {path}"}

    # -- domain helpers ------------------------------------------------------------------------

    def _stream(self, stream_id: str, *, creating: bool = False) -> list[int]:
        if stream_id not in self.streams:
            if self.fixed_streams is not None:
                raise _HTTPError(400 if creating else 404, f"Unknown stream {stream_id}")
            self.streams[stream_id] = []
        return self.streams[stream_id]

    def stream_number(self, stream_id: str) -> int:
        """The numeric id of a stream (encrypted ids get one of their own)."""
        if stream_id.isdecimal():
            return int(stream_id)
        return self._stream_numbers.setdefault(stream_id, 24569 + len(self._stream_numbers))

    def _object(self, object_id: str, stream_id: str | None = None) -> _Object:
        try:
            obj = self.objects[int(object_id)]
        except (ValueError, KeyError):
            raise _HTTPError(404, f"Object {object_id} not found") from None
        if stream_id is not None and obj.stream != stream_id:
            self._stream(stream_id)
            raise _HTTPError(404, f"Object {object_id} not found in stream {stream_id}")
        return obj

    def _activity(self, obj: _Object, type_: ObjectActivityType, data: dict[str, Any]) -> None:
        created = datetime.now(timezone.utc)
        activity_id = next(self._ids)
        obj.activities.append(
            {
                "objectId": str(obj.id),
                "user": {
                    "id": 0,
                    "first_name": "API",
                    "last_name": "",
                    "identity": {"identityId": 0},
                },
                "type": int(type_),
                "data": json.dumps(data),
                "createdTime": created.strftime("%Y-%m-%dT%H:%M:%S"),
            }
        )
        # Webhooks carry activities in their own shape (the webhooks page's examples).
        webhook_activity = {
            "User": {"Id": "0"},
            "Data": data,
            "Id": str(activity_id),
            "Type": str(int(type_)),
            "CreateDate": created.strftime("%d-%m-%Y %H:%M:%S"),
        }
        self._event(
            "Object",
            "OnNewActivity",
            {
                "Activities": {"Activity": webhook_activity},
                "Id": str(obj.id),
                "StreamId": str(obj.record["streamid"]),
                "SubStreamId": "0",
            },
        )

    def _event(self, subscription: str, name: str, payload: dict[str, Any]) -> None:
        self.outbox.append({"subscription": subscription, "name": name, "payload": payload})


def _event_xml(subscription: str, name: str, payload: Mapping[str, Any]) -> bytes:
    """The XML form of an outbox event, as the Developer Guide's webhook examples show it."""
    from xml.etree.ElementTree import Element, SubElement, tostring

    def fill(element: Element, value: Mapping[str, Any]) -> None:
        for key, item in value.items():
            if key in ("Message", "Content", "Data", "Snippet"):
                SubElement(element, key).text = item if isinstance(item, str) else json.dumps(item)
            elif isinstance(item, Mapping):
                fill(SubElement(element, key), item)
            elif isinstance(item, list):
                for entry in item:
                    if isinstance(entry, Mapping):
                        fill(SubElement(element, key), entry)
            elif item is not None:
                element.set(key, str(item))

    root = Element("Event", Subscription=subscription, Name=name, Brand="fake")
    fill(SubElement(root, subscription), payload)
    return tostring(root)


Handler = Callable[
    [FakeCommBox, dict[str, str], dict[str, list[str]], Any], Awaitable[tuple[int, Any]]
]
_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []
_SEG = r"[^/]+"


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    pattern = re.compile(re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m.group(1)}>{_SEG})", template))

    def register(fn: Handler) -> Handler:
        _ROUTES.append((method, pattern, fn))
        return fn

    return register


def _known(text: str, ids: Container[int]) -> bool:
    """Whether a path or query value is a decimal id among ``ids`` (the fake's 404 check)."""
    return text.isdecimal() and int(text) in ids


def _data(body: Any) -> dict[str, Any]:
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, dict):
        return data
    raise _HTTPError(400, 'Bad Request: the body must be {"data": {...}}')


def _text_body(body: Any) -> dict[str, Any]:
    """The body of an activity-log entry or a remark, which must carry ``Text``."""
    data = _data(body)
    if not _get(data, "Text"):
        raise _HTTPError(400, "Bad Request: Text is required")
    return data


def _get(data: Mapping[str, Any], *names: str) -> Any:
    lowered = {k.lower(): v for k, v in data.items()}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


@route("POST", "/streams/{stream}/objects")
async def _create_object(
    fake: FakeCommBox, p: dict[str, str], q: Any, body: Any
) -> tuple[int, Any]:
    attachments: list[dict[str, Any]] = []
    if isinstance(body, _Multipart):
        attachments = body.files
        try:
            data = json.loads(body.fields.get("data", ""))
        except ValueError:
            raise _HTTPError(400, "Bad Request: the data field is not JSON") from None
        if not isinstance(data, dict):
            raise _HTTPError(400, "Bad Request: the data field is not an object")
    else:
        data = _data(body)
    message = _get(data, "Message")
    if not isinstance(message, str) or not message.strip():
        raise _HTTPError(400, "Bad Request: Message is required")
    ids = fake._stream(p["stream"], creating=True)
    object_id = next(fake._ids)
    status = _get(data, "StatusId") or 1
    user = _get(data, "User") or {}
    content = _get(data, "Content") or {}
    now = _now()
    record = {
        "objectId": object_id,
        "streamid": fake.stream_number(p["stream"]),
        "substreamid": _get(data, "SubStreamId") or 0,
        "streamProviderId": str(_get(data, "StreamProviderId") or ""),
        "streamProviderType": _get(data, "StreamProviderType") or 0,
        "user_identity": _get(data, "UserIdentity") or next(fake._ids),
        "firstName": user.get("FirstName", ""),
        "lastName": user.get("LastName", ""),
        "userStreamProviderId": str(_get(data, "UserStreamProviderId") or ""),
        "userStreamProviderType": _get(data, "UserStreamProviderType") or 0,
        "content": json.dumps(content),
        "message": message,
        "createdTime": now,
        "updatedTime": now,
        "closeTime": None,
        "statusId": int(status),
        "assignedManagerId": _get(data, "ManagerId") or 0,
        "type": _get(data, "Type") or 4,
        "isManager": bool(_get(data, "ManagerId")),
        "user": {
            "id": next(fake._ids),
            "uniqueId": user.get("UniqueId", ""),
            "phone1": user.get("Phone1", ""),
            "phone2": user.get("Phone2", ""),
            "email": user.get("Email", ""),
            "firstName": user.get("FirstName", ""),
            "lastName": user.get("LastName", ""),
            "remarks": user.get("Remarks"),
            "content": "{}",
        },
    }
    obj = _Object(id=object_id, stream=p["stream"], record=record, attachments=attachments)
    first = {
        "id": next(fake._ids),
        "object_id": object_id,
        "content": json.dumps(content),
        "message": message,
        "createdTime": now,
        "streamProviderType": record["streamProviderType"],
        "user": {
            "id": record["user"]["id"],
            "managerId": record["assignedManagerId"],
            "isManager": record["isManager"],
            "identity": {"id": record["user_identity"]},
        },
    }
    obj.children.append(first)
    fake.objects[object_id] = obj
    ids.append(object_id)
    fake._event(
        "Object",
        "OnNew",
        {
            "Id": str(object_id),
            "StreamId": str(record["streamid"]),
            "Message": message,
            "Type": str(record["type"]),
            "StatusID": str(record["statusId"]),
        },
    )
    return 200, {"objectId": object_id}


def _new_child(fake: FakeCommBox, obj: _Object, data: dict[str, Any]) -> int:
    message = _get(data, "Message")
    if not isinstance(message, str) or not message.strip():
        raise _HTTPError(400, "Bad Request: Message is required")
    if _get(data, "UserStreamProviderId") in (None, ""):
        raise _HTTPError(400, "Bad Request: UserStreamProviderId is required")
    is_manager = bool(_get(data, "IsManager"))
    if is_manager and not _get(data, "UserIdentity"):
        raise _HTTPError(400, "Bad Request: UserIdentity is required for a message from an agent")
    child_id = next(fake._ids)
    obj.children.append(
        {
            "id": child_id,
            "object_id": obj.id,
            "content": json.dumps(_get(data, "Content") or {}),
            "message": message,
            "createdTime": _now(),
            "streamProviderType": _get(data, "UserStreamProviderType") or 0,
            "user": {
                "id": _get(data, "UserIdentity") or 0,
                "managerId": _get(data, "UserIdentity") or 0,
                "isManager": is_manager,
                "identity": {
                    "id": 0,
                    "streamProviderId": str(_get(data, "UserStreamProviderId")),
                    "streamProviderType": _get(data, "UserStreamProviderType") or 0,
                },
            },
        }
    )
    obj.record["updatedTime"] = _now()
    fake._event(
        "Object",
        "OnNewChild",
        {
            "Id": str(obj.id),
            "StreamId": str(obj.record["streamid"]),
            "Children": {"Child": {"Id": str(child_id), "Message": message}},
        },
    )
    return child_id


@route("POST", "/streams/{stream}/objects/{object}/child")
async def _create_child(fake: FakeCommBox, p: dict[str, str], q: Any, body: Any) -> tuple[int, Any]:
    obj = fake._object(p["object"], p["stream"])
    return 200, {"id": _new_child(fake, obj, _data(body))}


@route("POST", "/streams/{stream}/objects/{provider_id}/{provider_type}/child")
async def _create_child_by_provider(
    fake: FakeCommBox, p: dict[str, str], q: Any, body: Any
) -> tuple[int, Any]:
    ids = fake._stream(p["stream"])
    for object_id in reversed(ids):
        record = fake.objects[object_id].record
        if (
            record["userStreamProviderId"] == p["provider_id"]
            and str(record["userStreamProviderType"]) == p["provider_type"]
        ):
            return 200, {"id": _new_child(fake, fake.objects[object_id], _data(body))}
    raise _HTTPError(
        404,
        f"No conversation for {p['provider_id']} ({p['provider_type']}) in stream {p['stream']}",
    )


def _flag(q: dict[str, list[str]], name: str) -> bool:
    return any(v.lower() == "true" for v in q.get(name, []))


@route("GET", "/streams/{stream}/objects/{object}")
async def _get_object(fake: FakeCommBox, p: dict[str, str], q: Any, body: Any) -> tuple[int, Any]:
    obj = fake._object(p["object"], p["stream"])
    newest_first = list(reversed(obj.children))
    record = dict(obj.record)
    record["user"] = dict(
        record["user"], childs=newest_first if _flag(q, "includeChilds") else newest_first[:1]
    )
    if _flag(q, "includeActivityLog"):
        record["activityLog"] = obj.activities
    return 200, [record]


@route("GET", "/objects/{object}/activities")
async def _activities(fake: FakeCommBox, p: dict[str, str], q: Any, body: Any) -> tuple[int, Any]:
    obj = fake._object(p["object"])
    wanted = q.get("activityType", [""])[0]
    if not wanted.isdecimal():
        raise _HTTPError(400, "Bad Request: activityType must be a number")
    return 200, [a for a in obj.activities if a["type"] == int(wanted)]


@route("GET", "/streams/{stream}/objects/{object}/transcript")
async def _transcript(fake: FakeCommBox, p: dict[str, str], q: Any, body: Any) -> tuple[int, Any]:
    obj = fake._object(p["object"], p["stream"])
    lines = []
    for c in obj.children:
        who = "Agent" if c["user"]["isManager"] else "Customer"
        lines.append(f"\\n[{c['createdTime']}] \\n{who}: \\n{c['message']}")
    text = " ".join(lines) + f" \\nCommbox Ticket Link: {BASE_URL}/widget/object/{obj.id}"
    return 200, [
        {
            "objectId": obj.id,
            "streamid": obj.record["streamid"],
            "substreamid": obj.record["substreamid"],
            "trasncript": text,
            "user": obj.record["user"],
        }
    ]


_KNOWN_STATUSES = {int(s) for s in ObjectStatusType}


@route("POST", "/objects/{object}/status/{status}")
async def _set_status(fake: FakeCommBox, p: dict[str, str], q: Any, body: Any) -> tuple[int, Any]:
    obj = fake._object(p["object"])
    if not _known(p["status"], _KNOWN_STATUSES):
        raise _HTTPError(400, f"Bad Request: invalid status id {p['status']}")
    obj.record["statusId"] = int(p["status"])
    fake._activity(obj, ObjectActivityType.STATUS_CHANGE, {"statusId": int(p["status"])})
    return 200, None


@route("POST", "/objects/{object}/content")
async def _set_content(fake: FakeCommBox, p: dict[str, str], q: Any, body: Any) -> tuple[int, Any]:
    obj = fake._object(p["object"])
    obj.record["content"] = json.dumps(_data(body))
    return 200, None


@route("POST", "/objects/{object}/activitylog")
async def _activity_log(fake: FakeCommBox, p: dict[str, str], q: Any, body: Any) -> tuple[int, Any]:
    obj = fake._object(p["object"])
    data = _text_body(body)
    obj.activity_log.append(data)
    return 200, None


@route("POST", "/objects/{object}/remarks")
async def _remarks(fake: FakeCommBox, p: dict[str, str], q: Any, body: Any) -> tuple[int, Any]:
    obj = fake._object(p["object"])
    data = _text_body(body)
    obj.remarks.append(data)
    fake._activity(obj, ObjectActivityType.REMARK, {"text": _get(data, "Text")})
    return 200, None


@route("POST", "/objects/{object}/indicators")
async def _set_indicator(
    fake: FakeCommBox, p: dict[str, str], q: Any, body: Any
) -> tuple[int, Any]:
    obj = fake._object(p["object"])
    data = _data(body)
    if not _get(data, "IndicatorId"):
        raise _HTTPError(400, "Bad Request: IndicatorId is required")
    if not (_get(data, "DisplayClass") or _get(data, "Icon")):
        raise _HTTPError(400, "Bad Request: DisplayClass or Icon is required")
    obj.indicators[str(_get(data, "IndicatorId"))] = data
    return 200, None


@route("DELETE", "/objects/{object}/indicators/{indicator}")
async def _delete_indicator(
    fake: FakeCommBox, p: dict[str, str], q: Any, body: Any
) -> tuple[int, Any]:
    obj = fake._object(p["object"])
    if obj.indicators.pop(p["indicator"], None) is None:
        raise _HTTPError(404, f"Indicator {p['indicator']} not found")
    return 200, None


@route("POST", "/streams/{stream}/objects/{object}/tags/{tag}")
async def _set_tag(fake: FakeCommBox, p: dict[str, str], q: Any, body: Any) -> tuple[int, Any]:
    obj = fake._object(p["object"], p["stream"])
    if not p["tag"].isdecimal():
        raise _HTTPError(400, "Bad Request: invalid tag id")
    if int(p["tag"]) not in obj.tags:
        obj.tags.append(int(p["tag"]))
        _tag_event(fake, obj, p["tag"], "Add")
    return 200, None


def _tag_event(fake: FakeCommBox, obj: _Object, tag: str, action: str) -> None:
    fake._event(
        "Object",
        "OnUpdateTag",
        {
            "Id": str(obj.id),
            "StreamId": str(obj.record["streamid"]),
            "Tags": {"Tag": {"Id": tag, "Action": action}},
        },
    )


@route("DELETE", "/streams/{stream}/objects/{object}/tags/{tag}")
async def _remove_tag(fake: FakeCommBox, p: dict[str, str], q: Any, body: Any) -> tuple[int, Any]:
    obj = fake._object(p["object"], p["stream"])
    if not _known(p["tag"], obj.tags):
        raise _HTTPError(404, f"Tag {p['tag']} not on object {obj.id}")
    obj.tags.remove(int(p["tag"]))
    _tag_event(fake, obj, p["tag"], "Remove")
    return 200, None


@route("GET", "/managers/{manager}")
async def _get_manager(fake: FakeCommBox, p: dict[str, str], q: Any, body: Any) -> tuple[int, Any]:
    if not _known(p["manager"], fake.managers):
        raise _HTTPError(404, f"Manager {p['manager']} not found")
    return 200, fake.managers[int(p["manager"])]


_DEFAULT_MANAGER: dict[str, Any] = {
    "id": 520760,
    "content": '{"user_color":"","_isEmailVerified":true,"_activationState":"Handled"}',
    "identityId": 2192427,
    "streamProviderId": "john.s@gmail.com",
    "thumbnailUrl": None,
    "brandId": 1054,
    "permissionId": 3,
    "firstName": "John",
    "lastName": "Smith",
    "email": "john.s@gmail.com",
    "userName": "john.s",
    "teamId": 431,
    "teamName": "VIP",
    "profiles": "",
    "maxSyncObjectsAssignments": 3,
    "maxAsyncObjectsAssignments": 5,
    "multiReplyAccess": "",
}


# -- ASGI plumbing -----------------------------------------------------------------------------


@attrs.define
class _Multipart:
    fields: dict[str, str]
    files: list[dict[str, Any]]


async def _read_body(request: Any) -> Any:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=1000, max_fields=1000)
        fields: dict[str, str] = {}
        files: list[dict[str, Any]] = []
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields[key] = value
                continue
            size = 0
            while chunk := await value.read(1 << 20):
                size += len(chunk)
            files.append(
                {
                    "field": key,
                    "filename": value.filename,
                    "content_type": value.content_type,
                    "size": size,
                }
            )
        await form.close()
        return _Multipart(fields=fields, files=files)
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise _HTTPError(400, "Bad Request: the body is not JSON") from None


async def _send_json(
    send: Send, status: int, body: Any, headers: Mapping[str, str] | None = None
) -> None:
    await _send_raw(send, status, json.dumps(body).encode(), "application/json", headers)


async def _send_raw(
    send: Send, status: int, payload: bytes, ctype: str, headers: Mapping[str, str] | None = None
) -> None:
    hdrs = [(b"content-type", ctype.encode()), (b"content-length", str(len(payload)).encode())]
    hdrs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": payload})


async def _drop(send: Send, *, processed: bool) -> None:
    # In-process, the transport turns this into a dropped connection. Under a real server it
    # escapes after a response start that promised a body never sent, so the server closes
    # the connection and the client sees the response lost.
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        }
    )
    raise ConnectionDropped(processed)


class _FakeTransport(httpx.AsyncBaseTransport):
    def __init__(self, fake: FakeCommBox) -> None:
        self._asgi = httpx.ASGITransport(app=fake)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._asgi.handle_async_request(request)
        except ConnectionDropped as exc:
            if exc.processed:
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                ) from None
            raise httpx.ConnectError(
                "fake: connection failed before the request was read", request=request
            ) from None


from . import _fake_api  # noqa: E402,F401  (registers the rest of the API's routes)
