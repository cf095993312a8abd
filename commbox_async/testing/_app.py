"""FakeCommBox: a stateful, in-memory CommBox for tests and demos.

It answers in CommBox's envelope, with ids shaped like CommBox's, the documented status codes,
a server-side rate limit and fault injection. Use it in-process (``fake.client()`` or
``fake.transport()``, no sockets) or as a real server (``commbox fake-server --port N``).
Everything under ``/_fake/`` is the fake's own inspection API, not CommBox's.

A request goes: authentication (401), the rate limit (429), the fault picked for it, then the
route's handler (:mod:`._handlers`) on the state (:mod:`._state`), and the fault's effect on
the reply (:mod:`._faults`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar
from urllib.parse import parse_qs

import anyio
import attrs
import httpx

from .._client import AsyncCommBox
from .._extras import missing_extra
from . import _outbox
from ._asgi import InProcessTransport, Receive, Scope, Send, drop, read_body, send_reply
from ._faults import (
    DEFAULT_FAULTS,
    FAULTS,
    NO_FAULT,
    Fault,
    FaultInjector,
    TokenBucket,
    Unprocessed,
)
from ._handlers import ROUTES, Handler
from ._routing import Router
from ._state import FakeState, RequestRecord
from ._wire import BASE_URL, HTTPError, Reply, envelope

__all__ = ["FakeCommBox"]

_Inspection = Callable[["FakeCommBox", Any], Awaitable[tuple[int, Any]]]


def _require_fake_extra() -> None:
    """The fake is an ASGI app on Starlette: say which ``pip install`` brings it now, rather
    than fail at the first request."""
    try:
        import starlette.requests  # noqa: F401
    except ImportError as exc:
        raise missing_extra(exc, extra="fake", what="FakeCommBox") from None


class FakeCommBox(FakeState):
    """An in-memory CommBox.

    - ``token``: the only Bearer token accepted (default: any non-empty one).
    - ``streams``: a fixed set of stream ids; others are 404 (default: created on first use).
    - ``rate_limit`` (requests/s) and ``burst``: a server-side limit answering 429 with
      ``Retry-After``.
    - ``fault_rate``, ``faults``, ``seed``: inject faults at random, reproducibly; or script them
      with :meth:`fail_next`. Kinds: see :data:`FAULT_KINDS`. Over a real server
      (:func:`serve`), ``drop_before`` and ``lost_after`` drop the connection with no response
      at all, before and after processing the request.
    - ``index_delay``: seconds before a new conversation shows in stream search.
    """

    _router: ClassVar[Router] = Router.of(ROUTES)

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
        index_delay: float = 0.0,
    ) -> None:
        _require_fake_extra()
        self.token = token
        self.slow_seconds = slow_seconds
        self._injector = FaultInjector()
        super().__init__(streams=streams, managers=managers)
        self.configure(
            rate_limit=rate_limit,
            burst=burst,
            fault_rate=fault_rate,
            faults=faults,
            seed=seed,
            index_delay=index_delay,
        )

    # -- configuration -------------------------------------------------------------------------

    def configure(
        self,
        *,
        rate_limit: float | None = None,
        burst: int | None = None,
        fault_rate: float | None = None,
        faults: Iterable[str] | None = None,
        seed: int | None = None,
        index_delay: float | None = None,
    ) -> None:
        """Change the rate limit, the random faults and the search index's delay (also
        ``POST /_fake/config``)."""
        self._injector.configure(rate=fault_rate, kinds=faults, seed=seed)
        self._bucket = TokenBucket(rate_limit, burst)
        if index_delay is not None:
            if not index_delay >= 0:
                raise ValueError(f"index_delay must be >= 0 seconds, got {index_delay!r}")
            self.index_delay = float(index_delay)

    @property
    def fault_rate(self) -> float:
        return self._injector.rate

    @property
    def faults(self) -> tuple[str, ...]:
        return self._injector.kinds

    @property
    def rate_limit(self) -> float | None:
        return self._bucket.rate

    @property
    def burst(self) -> int:
        return self._bucket.burst

    def reset(self) -> None:
        """Forget every object, request, event and scripted fault (also ``POST /_fake/reset``)."""
        super().reset()
        self._injector.clear_script()

    def fail_next(self, kind: str, *, times: int = 1, path: str | None = None) -> None:
        """Script the next ``times`` requests (matching ``path`` if given) to fail with ``kind``."""
        self._injector.script(kind, times=times, path=path)

    # -- webhooks ------------------------------------------------------------------------------

    def webhook_bodies(self, *, format: str = "json") -> list[tuple[str, str, bytes]]:
        """The outbox as webhook bodies: (subscription, name, body) in CommBox's JSON form
        (``{"payload": ...}``) or XML form (``<Event Subscription= Name= Brand=>``)."""
        return _outbox.webhook_bodies(self.outbox, format=format)

    async def deliver(self, router: Any, *, format: str = "json", clear: bool = True) -> int:
        """Parse every outbox event as CommBox would send it and dispatch it into a
        :class:`~commbox_async.webhooks.WebhookRouter`; return how many were delivered."""
        return await _outbox.deliver(self.outbox, router, format=format, clear=clear)

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
        return await _outbox.deliver_to(
            self.outbox, url, format=format, clear=clear, transport=transport
        )

    # -- clients -------------------------------------------------------------------------------

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport that calls the fake in-process (no sockets, no lifespan)."""
        return InProcessTransport(self)

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
            await _lifespan(receive, send)
        if scope["type"] != "http":
            return
        # The ``fake`` extra, imported here so that importing the fake needs only the core.
        from starlette.requests import Request

        request = Request(scope, receive)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        path = raw_path.decode("latin-1").split("?", 1)[0]
        method = scope["method"]
        if path.startswith("/_fake/"):
            status, body = await self._inspect(method, path, request)
            await send_reply(send, Reply.json(status, body))
            return
        query = scope.get("query_string", b"").decode("latin-1")
        record = RequestRecord(
            method=method, path=path, query=query, status=0, fault=None, processed=False
        )
        self.requests.append(record)
        await self._answer(record, request, send)

    async def _answer(self, record: RequestRecord, request: Any, send: Send) -> None:
        reply = self._refusal(request)
        if reply is None:
            kind = self._injector.pick(record.path)
            record.fault = kind
            fault = NO_FAULT if kind is None else FAULTS[kind]
            reply = await self._serve(fault, record, request)
            if reply is None:
                await drop(send, processed=fault.processed)
                return
        record.status = reply.status
        await send_reply(send, reply)

    def _refusal(self, request: Any) -> Reply | None:
        """401 without the right Bearer token, 429 over the rate limit."""
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not token.strip() or (self.token is not None and token != self.token):
            return Reply.error(401, "Unauthorized")
        retry_after = self._bucket.take()
        if retry_after is not None:
            headers = {"retry-after": str(math.ceil(retry_after))}
            return Reply.error(429, "Too Many Requests", headers)
        return None

    async def _serve(self, fault: Fault, record: RequestRecord, request: Any) -> Reply | None:
        """The reply under ``fault`` (``None``: the connection drops)."""
        if isinstance(fault, Unprocessed):
            return fault.reply()
        if fault.slow:
            await anyio.sleep(self.slow_seconds)
        return fault.spoil(await self._process(record, request))

    async def _process(self, record: RequestRecord, request: Any) -> Reply:
        try:
            handler, params = self._route(record.method, record.path)
            record.body = await read_body(request)
            status, data = handler(self, params, parse_qs(record.query), record.body)
            body = envelope(data, status)
        except HTTPError as exc:
            status, body = exc.status, envelope(None, exc.status, exc.description)
        record.status = status
        record.processed = 200 <= status < 300
        return Reply.json(status, body)

    def _route(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        return self._router.match(method, path)

    # -- inspection API ------------------------------------------------------------------------

    async def _inspect(self, method: str, path: str, request: Any) -> tuple[int, Any]:
        action = self._inspection.get((method, path))
        if action is None:
            return 404, {"error": f"no fake endpoint {method} {path}"}
        return await action(self, request)

    async def _get_state(self, request: Any) -> tuple[int, Any]:
        return 200, self.state()

    async def _get_requests(self, request: Any) -> tuple[int, Any]:
        return 200, [attrs.asdict(r) for r in self.requests]

    async def _post_reset(self, request: Any) -> tuple[int, Any]:
        self.reset()
        return 200, {"reset": True}

    async def _post_config(self, request: Any) -> tuple[int, Any]:
        try:
            config = json.loads(await request.body() or b"{}")
            script = config.pop("script", [])
            self.configure(**config)
            for kind in script:
                self.fail_next(kind)
        except (ValueError, TypeError) as exc:
            return 400, {"error": str(exc)}
        return 200, {"configured": True}

    _inspection: ClassVar[Mapping[tuple[str, str], _Inspection]] = MappingProxyType(
        {
            ("GET", "/_fake/state"): _get_state,
            ("GET", "/_fake/requests"): _get_requests,
            ("POST", "/_fake/reset"): _post_reset,
            ("POST", "/_fake/config"): _post_config,
        }
    )


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
