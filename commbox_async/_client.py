"""AsyncCommBox: the client users hold."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NoReturn, final

import attrs
import httpx

from ._base_client import (
    DEFAULT_MAX_RESPONSE_BYTES,
    BaseClient,
    ClientOptions,
    TokenProvider,
    TokenSource,
    _Core,
    check_seconds,
    merge_headers,
)
from ._exceptions import ConfigurationError
from ._files import AttachmentInput
from ._hooks import ClientStats, Hooks
from ._json import DEFAULT_MAX_DEPTH
from ._ratelimit import (
    DEFAULT_BURST,
    DEFAULT_RATE_LIMIT,
    FirstDelayNotice,
    RateLimit,
    make_throttle,
    resolve_rate_limit,
)
from ._response import to_raw_response
from ._throttle import AdaptiveThrottle, Throttle
from ._transport import AutoSender, HttpxSender, Sender, TransportOption, make_sender
from ._urls import check_base_url
from ._version import __version__
from .resources import (
    Auth,
    AuthWithRawResponse,
    Automation,
    AutomationWithRawResponse,
    Forms,
    FormsWithRawResponse,
    Managers,
    ManagersWithRawResponse,
    Objects,
    ObjectsWithRawResponse,
    Sms,
    SmsWithRawResponse,
    Stats,
    StatsWithRawResponse,
    Streams,
    StreamsWithRawResponse,
    System,
    SystemWithRawResponse,
    Tags,
    TagsWithRawResponse,
    Teams,
    TeamsWithRawResponse,
    Users,
    UsersWithRawResponse,
    WhatsApp,
    WhatsAppWithRawResponse,
)

if TYPE_CHECKING:
    from .bulk import Bulk
    from .export import Export

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_BURST",
    "DEFAULT_RATE_LIMIT",
    "NOT_GIVEN",
    "AsyncCommBox",
    "NotGiven",
]

DEFAULT_BASE_URL = "https://api.commbox.io"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: Seconds a call may take in all, attempts and waits included.
DEFAULT_DEADLINE = 300.0


@final
class NotGiven:
    """The type of :data:`NOT_GIVEN`: "leave this option as it is" in ``with_options``, where
    ``None`` is itself a value (no deadline, no timeout)."""

    __slots__ = ()

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


def _timeout(value: float | httpx.Timeout | None) -> httpx.Timeout:
    if isinstance(value, httpx.Timeout):
        return value
    if value is None:
        return httpx.Timeout(None)
    check_seconds("timeout", value, positive=True, infinite=False)
    return httpx.Timeout(value, connect=min(value, DEFAULT_TIMEOUT.connect or value))


class AsyncCommBox(BaseClient):
    """The asynchronous CommBox client.

    Use it as an async context manager so its connection pool is closed::

        async with AsyncCommBox(token="...") as cb:
            conversation = await cb.objects.get(532, 293854, include_children=True)

    Every option is keyword-only:

    - ``token``: the API key (Settings > API), or a sync/async callable returning it, asked per
      request and once more after a 401 (keys rotate). Default: ``$COMMBOX_TOKEN``.
    - ``base_url``: ``https://api.commbox.io`` or your brand's own API host. Default:
      ``$COMMBOX_BASE_URL``. Plain ``http://`` is refused except for loopback hosts.
    - ``timeout``: seconds per attempt (or an ``httpx.Timeout``); default 30 s, 10 s to connect.
    - ``deadline``: total seconds for a call, all attempts and waits included (default 300:
      a server that drips its answer a byte at a time, or never finishes its headers, cannot
      hold a call for ever; ``None`` for no bound but the per-read timeouts).
    - ``max_retries``: retries after the first attempt (default 2). POSTs are retried only when
      CommBox certainly did not process them, unless ``retry_uncertain=True``.
    - ``max_retry_after``: the longest ``Retry-After`` (s) worth sleeping for; a longer one raises
      at once (default 60).
    - ``rate_limit`` / ``burst``: the client-side token bucket in requests/s. Default:
      ``$COMMBOX_RATE_LIMIT`` (a number, ``adaptive`` or ``off``), else **10/s, burst 10**
      (:data:`DEFAULT_RATE_LIMIT`, :data:`DEFAULT_BURST`); an explicit argument wins over
      the variable. ``rate_limit=None`` turns it off; ``rate_limit="adaptive"`` starts at
      10/s and finds the highest rate CommBox grants (:class:`AdaptiveThrottle`).
      ``throttle=`` plugs in another :class:`Throttle` (e.g. one shared through Redis). The
      first time the limit holds a request back, one INFO record says so.
    - ``max_response_bytes``: the largest response body read (default 32 MiB; ``None`` for no
      limit). A longer one stops being read at the limit and raises
      :class:`ResponseTooLargeError`, whose verdict follows the status that came with it.
    - ``max_depth``: how deeply a response's JSON may nest, the JSON inside its string fields
      included (default 256); a deeper body raises :class:`InvalidResponseError` (or
      :class:`DecodeError`) before Python's recursion limit could.
    - ``max_connections``, ``max_keepalive_connections``, ``keepalive_expiry``, ``http2``: the pool.
    - ``user_agent``, ``default_headers``, ``hooks``.
    - ``http_client``: an ``httpx.AsyncClient`` of your own, used as-is and never closed here.
    - ``transport``: ``"httpx"`` (the default: asyncio and trio, HTTP/2), ``"aiohttp"`` (the
      ``aiohttp`` extra: several times the throughput at high concurrency; asyncio only,
      HTTP/1.1), ``"auto"`` (aiohttp when installed and the loop is asyncio, else httpx), or an
      ``httpx.AsyncBaseTransport`` (the testing seam: ``httpx.ASGITransport(app)``...). Pool
      limits, keep-alive and timeouts apply the same way to both; aiohttp has no separate
      ``max_keepalive_connections`` and no write timeout. Left unset, ``cb.bulk`` and
      ``cb.export`` still go through aiohttp when it is installed and the loop is asyncio
      (their own pool, the same throttle, token, hooks and counters); ``transport="httpx"``
      keeps them on httpx too.
    """

    def __init__(
        self,
        *,
        token: TokenSource | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        deadline: float | None = DEFAULT_DEADLINE,
        max_retries: int = 2,
        max_retry_after: float = 60.0,
        retry_uncertain: bool = False,
        rate_limit: RateLimit | NotGiven = NOT_GIVEN,
        burst: int | None = DEFAULT_BURST,
        throttle: Throttle | None = None,
        max_connections: int = 50,
        max_keepalive_connections: int | None = 20,
        keepalive_expiry: float | None = 5.0,
        http2: bool = False,
        user_agent: str | None = None,
        default_headers: Mapping[str, str] | None = None,
        hooks: Hooks | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: TransportOption = None,
        initial_backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        if token is None:
            token = os.environ.get("COMMBOX_TOKEN") or None
        if token is None:
            raise ConfigurationError(
                "no CommBox token: pass token=... or set COMMBOX_TOKEN "
                "(an admin finds the API key under Settings > API)"
            )
        # From here on only the provider holds it: a traceback of an error in this frame,
        # rendered with its locals, must not show the token (not even a refused one).
        try:
            provider = TokenProvider(token)
        finally:
            del token
        url = check_base_url(base_url or os.environ.get("COMMBOX_BASE_URL") or DEFAULT_BASE_URL)
        source = "throttle="
        if throttle is None:
            setting, source = resolve_rate_limit(
                rate_limit, given=not isinstance(rate_limit, NotGiven)
            )
            throttle = make_throttle(setting, burst)
        if throttle is not None and not isinstance(throttle, Throttle):
            raise ConfigurationError("throttle must have async acquire() and pause(seconds)")
        hooks = _with_throttle_hooks(hooks or Hooks(), throttle, source)
        if max_connections < 1:
            raise ConfigurationError(f"max_connections must be >= 1, got {max_connections}")
        if http_client is not None and transport is not None:
            raise ConfigurationError("pass either http_client= or transport=, not both")
        options = ClientOptions(
            timeout=_timeout(timeout),
            max_retries=max_retries,
            deadline=deadline,
            max_retry_after=max_retry_after,
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
            retry_uncertain=retry_uncertain,
            max_response_bytes=max_response_bytes,
            max_depth=max_depth,
            user_agent=user_agent or f"commbox-async/{__version__} httpx/{httpx.__version__}",
            headers=dict(default_headers or {}),
        )
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
        )
        sender = (
            HttpxSender(http_client, owns=False)
            if http_client is not None
            else make_sender(
                timeout=options.timeout,
                limits=limits,
                http2=http2,
                transport=transport,
                headers=options.static_headers,
            )
        )
        bulk_sender = None
        if transport is None and http_client is None and not http2:
            bulk_sender = AutoSender(
                limits=limits,
                fallback=sender,
                owns_fallback=False,
                headers=options.static_headers,
                timeout=options.timeout,
            )
        self._core = _Core(
            base_url=url,
            sender=sender,
            bulk_sender=bulk_sender,
            token=provider,
            throttle=throttle,
            hooks=hooks,
            asyncio_only=transport == "aiohttp",
        )
        self._options = options

    # -- views --------------------------------------------------------------------------------

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
        deadline: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        max_retry_after: float | NotGiven = NOT_GIVEN,
        retry_uncertain: bool | NotGiven = NOT_GIVEN,
        max_response_bytes: int | NotGiven | None = NOT_GIVEN,
        max_depth: int | NotGiven = NOT_GIVEN,
        default_headers: Mapping[str, str] | NotGiven = NOT_GIVEN,
    ) -> AsyncCommBox:
        """A view with other per-call options that shares this client's pool, throttle, token,
        hooks and counters. Closing either closes both."""
        changes: dict[str, Any] = {}
        if not isinstance(timeout, NotGiven):
            changes["timeout"] = _timeout(timeout)
        if not isinstance(deadline, NotGiven):
            changes["deadline"] = deadline
        if not isinstance(max_retries, NotGiven):
            changes["max_retries"] = max_retries
        if not isinstance(max_retry_after, NotGiven):
            changes["max_retry_after"] = max_retry_after
        if not isinstance(retry_uncertain, NotGiven):
            changes["retry_uncertain"] = retry_uncertain
        if not isinstance(max_response_bytes, NotGiven):
            changes["max_response_bytes"] = max_response_bytes
        if not isinstance(max_depth, NotGiven):
            changes["max_depth"] = max_depth
        if not isinstance(default_headers, NotGiven):
            changes["headers"] = merge_headers(self._options.headers, default_headers)
        return self._view(attrs.evolve(self._options, **changes), self._sender)

    def _view(self, options: ClientOptions, sender: Sender | None) -> AsyncCommBox:
        """Another face of this client: the same core (pool, throttle, token, hooks,
        counters), its own options and, for the bulk and export views, its own sender."""
        view = object.__new__(type(self))
        view._core = self._core
        view._options = options
        view._sender = sender
        return view

    def _for_bulk(self) -> AsyncCommBox:
        """The view cb.bulk and cb.export send through. It never retries a request CommBox
        may have acted on (their outcomes promise no duplicates, whatever this client's
        ``retry_uncertain``); with the transport left unset it goes through aiohttp when that
        is installed and the loop is asyncio (several times the throughput at high
        concurrency), sharing this client's throttle, token, hooks and counters."""
        options = attrs.evolve(self._options, retry_uncertain=False)
        bulk_sender = self._core.bulk_sender
        if bulk_sender is None or self._sender is not None:
            return self._view(options, self._sender)
        return self._view(options, bulk_sender)

    @property
    def transport(self) -> str:
        """The transport this client's requests go through: ``"httpx"``, ``"aiohttp"``, or
        ``"auto"`` until the first request decides."""
        return (self._sender or self._core.sender).name

    @cached_property
    def with_raw_response(self) -> AsyncCommBoxWithRawResponse:
        """The same methods, returning :class:`APIResponse` (status, headers, envelope) too."""
        return AsyncCommBoxWithRawResponse(self)

    # -- resources ----------------------------------------------------------------------------

    @cached_property
    def objects(self) -> Objects:
        """Conversations (objects) and their messages (children): ``/streams/.../objects``,
        ``/objects/...``."""
        return Objects(self)

    @cached_property
    def streams(self) -> Streams:
        """Channels: availability and conversation search (``/streams/{STREAM_ID}/...``)."""
        return Streams(self)

    @cached_property
    def users(self) -> Users:
        """Customers and their identities' conversations: ``/users/...``."""
        return Users(self)

    @cached_property
    def managers(self) -> Managers:
        """Agents and admins: presence, profiles, assignments (``/managers/...``)."""
        return Managers(self)

    @cached_property
    def teams(self) -> Teams:
        """Teams of agents: ``/managers/teams``."""
        return Teams(self)

    @cached_property
    def stats(self) -> Stats:
        """Conversation counts and SLA breaches per stream: ``/stats/...``."""
        return Stats(self)

    @cached_property
    def system(self) -> System:
        """Platform status: ``/core/systemstatus``."""
        return System(self)

    @cached_property
    def sms(self) -> Sms:
        """Texts through a channel's encrypted id: ``/sms/...``."""
        return Sms(self)

    @cached_property
    def whatsapp(self) -> WhatsApp:
        """WhatsApp templates, media, contact checks, campaigns: ``/whatsapp/...``, ``/v2/...``,
        ``/emarsys/...``."""
        return WhatsApp(self)

    @cached_property
    def tags(self) -> Tags:
        """Tags and tag groups: ``/tags/...``."""
        return Tags(self)

    @cached_property
    def forms(self) -> Forms:
        """Form links: ``/forms/...``."""
        return Forms(self)

    @cached_property
    def auth(self) -> Auth:
        """Login tickets: ``/auth/ticket``."""
        return Auth(self)

    @cached_property
    def automation(self) -> Automation:
        """A conversation's automation context: ``/automation/objects/...``."""
        return Automation(self)

    @cached_property
    def bulk(self) -> Bulk:
        """High-volume sends with a resumable journal (see :mod:`commbox_async.bulk`)."""
        from .bulk import Bulk

        return Bulk(self._for_bulk())

    @cached_property
    def export(self) -> Export:
        """Whole-conversation exports, concurrent and resumable (see
        :mod:`commbox_async.export`)."""
        from .export import Export

        return Export(self._for_bulk())

    # -- escape hatch -------------------------------------------------------------------------

    async def request(
        self,
        method: Literal["GET", "POST", "PATCH", "DELETE", "PUT"] | str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Sequence[AttachmentInput] | None = None,
        allow_partial: bool = False,
        **path_params: str | int,
    ) -> Any:
        """Call an endpoint without a method yet, with the same auth, throttle, retries, errors.

        ``path`` is a template; its ``{fields}`` come from keyword arguments and each is encoded
        as one path segment: ``await cb.request("GET", "/managers/{manager_id}", manager_id=7)``.
        Returns the envelope's ``data`` as decoded JSON.
        """
        envelope = await self._request(
            method,
            path,
            path_params=path_params,
            params=params,
            json=json,
            data=data,
            files=files,
            allow_partial=allow_partial,
        )
        return envelope.data

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return str(self._core.base_url)

    @property
    def metrics(self) -> ClientStats:
        """Counters: requests, retries by reason, 429s, time spent throttled."""
        return self._core.stats

    @property
    def throttle(self) -> Throttle | None:
        return self._core.throttle

    @property
    def is_closed(self) -> bool:
        return self._core.closed

    async def aclose(self) -> None:
        """Close the connection pool (unless it was passed in as ``http_client``). Idempotent."""
        await self._core.aclose()

    async def __aenter__(self) -> AsyncCommBox:
        self._core.check_usable()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        if not hasattr(self, "_core"):  # shown by a traceback while __init__ is failing
            return "AsyncCommBox(<not constructed>)"
        o = self._options
        return (
            f"AsyncCommBox(base_url={self.base_url!r}, token=<redacted>, "
            f"max_retries={o.max_retries}, throttle={self._core.throttle!r}"
            f"{', closed' if self._core.closed else ''})"
        )

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("AsyncCommBox cannot be pickled (it holds a token and a connection pool)")


def _with_throttle_hooks(hooks: Hooks, throttle: Throttle | None, source: str) -> Hooks:
    """The user's hooks, after the client's own: the notice of the first delay, and the
    answers an adaptive throttle learns from."""
    if throttle is None:
        return hooks
    changes: dict[str, Any] = {
        "on_throttle": (FirstDelayNotice(throttle, source), *hooks.on_throttle)
    }
    if isinstance(throttle, AdaptiveThrottle):
        changes["on_response"] = (throttle.on_response, *hooks.on_response)
    return attrs.evolve(hooks, **changes)


class AsyncCommBoxWithRawResponse:
    """``cb.with_raw_response``: every awaitable method, returning an :class:`APIResponse`
    (the typed value with the HTTP and envelope facts), typed like the method itself."""

    def __init__(self, client: AsyncCommBox) -> None:
        self._client = client
        self.request = to_raw_response(client.request)

    if not TYPE_CHECKING:  # a clearer message than the default; type checkers know the names

        def __getattr__(self, name: str) -> NoReturn:
            raise AttributeError(f"AsyncCommBox has no resource namespace {name!r}")

    @cached_property
    def objects(self) -> ObjectsWithRawResponse:
        return ObjectsWithRawResponse(self._client.objects)

    @cached_property
    def streams(self) -> StreamsWithRawResponse:
        return StreamsWithRawResponse(self._client.streams)

    @cached_property
    def users(self) -> UsersWithRawResponse:
        return UsersWithRawResponse(self._client.users)

    @cached_property
    def managers(self) -> ManagersWithRawResponse:
        return ManagersWithRawResponse(self._client.managers)

    @cached_property
    def teams(self) -> TeamsWithRawResponse:
        return TeamsWithRawResponse(self._client.teams)

    @cached_property
    def stats(self) -> StatsWithRawResponse:
        return StatsWithRawResponse(self._client.stats)

    @cached_property
    def system(self) -> SystemWithRawResponse:
        return SystemWithRawResponse(self._client.system)

    @cached_property
    def sms(self) -> SmsWithRawResponse:
        return SmsWithRawResponse(self._client.sms)

    @cached_property
    def whatsapp(self) -> WhatsAppWithRawResponse:
        return WhatsAppWithRawResponse(self._client.whatsapp)

    @cached_property
    def tags(self) -> TagsWithRawResponse:
        return TagsWithRawResponse(self._client.tags)

    @cached_property
    def forms(self) -> FormsWithRawResponse:
        return FormsWithRawResponse(self._client.forms)

    @cached_property
    def auth(self) -> AuthWithRawResponse:
        return AuthWithRawResponse(self._client.auth)

    @cached_property
    def automation(self) -> AutomationWithRawResponse:
        return AutomationWithRawResponse(self._client.automation)
