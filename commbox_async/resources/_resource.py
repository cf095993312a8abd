"""What every resource namespace shares: the client, and reading ``data`` into types."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeGuard, TypeVar

from .._exceptions import (
    CommBoxError,
    ConfigurationError,
    DecodeError,
    InvalidArgumentError,
    InvalidResponseError,
    NotFoundError,
    brief,
)
from .._response import Envelope
from .._verdict import Processed
from ..models import structure

if TYPE_CHECKING:
    from .._client import AsyncCommBox

T = TypeVar("T")

#: A CommBox id as the caller has it: a number, or its string (encrypted ids are strings).
Id = int | str

_ID_KEYS = ("objectId", "objectid", "ObjectId", "Id", "id", "childId", "ChildId")

#: The largest id CommBox gives: its ids are positive 64-bit integers.
MAX_ID = 2**63 - 1


def is_id(value: object) -> TypeGuard[int]:
    """Whether ``value`` can be an id CommBox gave (a positive int64; not a bool). Anything
    else in an answer is unreadable: no object has it, and no journal column holds it."""
    return type(value) is int and 0 < value <= MAX_ID


def decode(data: Any, cls: Any, *, max_depth: int | None = None) -> Any:
    """``data`` of a successful response as ``cls`` (JSON inside its strings decoded under
    ``max_depth``). CommBox answered 2xx, so it acted on the request: a value that does not
    decode raises :class:`DecodeError` with ``processed`` ``YES`` (a POST must not be sent
    again because its answer was unreadable)."""
    failure: CommBoxError
    try:
        return structure(data, cls, max_depth=max_depth)
    except DecodeError as exc:
        failure = exc
    except CommBoxError:
        raise
    except Exception as exc:  # a converter bug must not escape untyped, or lose the verdict
        failure = DecodeError(
            f"{type(exc).__name__}: {exc}",
            model=getattr(cls, "__name__", str(cls)),
            path="",
            value=None,
        )
    failure.processed = Processed.YES
    raise failure


class APIResource:
    """A namespace of methods on one client (or one ``with_options`` view of it)."""

    def __init__(self, client: AsyncCommBox) -> None:
        self._client = client

    @staticmethod
    def _decode(envelope: Envelope, cls: type[T]) -> T:
        result: T = decode(envelope.data, cls, max_depth=envelope.max_depth)
        return result

    def _paginate(
        self,
        path: str,
        cls: type[T],
        *,
        path_params: Mapping[str, object],
        params: Mapping[str, Any],
        page_size: int,
    ) -> Paginator[T]:
        """A GET list paged with ``pageNumber``/``pageSize``, fetched lazily."""

        async def fetch(number: int, size: int) -> list[T]:
            envelope = await self._client._request(
                "GET",
                path,
                path_params=path_params,
                params={**params, "pageNumber": number, "pageSize": size},
            )
            return self._list(envelope, cls)

        return Paginator(fetch, page_size=page_size)

    @staticmethod
    def _list(envelope: Envelope, cls: type[T]) -> list[T]:
        """``data`` holding a list: an empty body or ``""`` is none, one object is one."""
        data = envelope.data
        if data is None or data == "":
            return []
        if not isinstance(data, list):
            data = [data]
        return list(decode(data, tuple[cls, ...], max_depth=envelope.max_depth))  # type: ignore[valid-type]

    @staticmethod
    def _single(envelope: Envelope, cls: type[T], *, method: str, path: str) -> T:
        """``data`` holding one record, as an object or a one-element list."""
        data = envelope.data
        if isinstance(data, list):
            if not data:
                raise NotFoundError(
                    "CommBox returned no record",
                    http_status=envelope.http_status,
                    envelope_status=envelope.envelope_status,
                    description=envelope.description,
                    method=method,
                    path=path,
                    headers=envelope.headers,
                    body=envelope.body,
                )
            data = data[0]
        result: T = decode(data, cls, max_depth=envelope.max_depth)
        return result

    @staticmethod
    def _new_id(envelope: Envelope, *, method: str, path: str) -> int:
        """The id of what a POST created: a bare id, ``{"objectId": ...}``, ``{"Id": ...}``..."""
        data = envelope.data
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        candidate: Any = data
        if isinstance(data, Mapping):
            candidate = next((data[k] for k in _ID_KEYS if k in data), None)
        if isinstance(candidate, str):
            text = candidate.strip()
            # At most 19 digits: int() of a hostile 5,000-digit string is refused by the
            # interpreter (a ValueError), and no int64 is longer.
            if text.isdecimal() and len(text) <= 19:
                candidate = int(text)
        if is_id(candidate):
            return candidate
        what = (
            "has no id this client recognises"
            if candidate is None
            else f"has {brief(candidate)} for its id, which is not a CommBox id (a positive "
            "64-bit integer)"
        )
        raise InvalidResponseError(
            f"CommBox accepted the request but its response {what}; the object may have been "
            "created (see .body)",
            http_status=envelope.http_status,
            content_type=envelope.headers.get("content-type"),
            snippet=json.dumps(envelope.body)[:200],
            method=method,
            path=path,
            body=envelope.body,
        )


class Paginator(Generic[T]):
    """Every item of a paged CommBox list (``pageNumber``/``pageSize``), one page at a time.

    ``async for item in paginator`` requests the next page only when the previous one is used
    up, and stops after a page shorter than the page size (or an empty one); ``break`` stops
    it without another request. ``await paginator.page(n)`` returns page ``n`` (1-based).
    """

    def __init__(
        self, fetch: Callable[[int, int], Awaitable[list[T]]], *, page_size: int, start: int = 1
    ) -> None:
        if page_size < 1:
            raise ConfigurationError(f"page_size must be at least 1, got {page_size}")
        if start < 1:
            raise ConfigurationError(f"page numbers start at 1, got {start}")
        self._fetch = fetch
        self.page_size = page_size
        self._start = start

    async def page(self, number: int) -> list[T]:
        """Page ``number`` (1-based) as a list."""
        if number < 1:
            raise ConfigurationError(f"page numbers start at 1, got {number}")
        return await self._fetch(number, self.page_size)

    async def pages(self) -> AsyncIterator[list[T]]:
        """The pages in order, each as a list, ending after a short or empty page."""
        number = self._start
        while True:
            items = await self._fetch(number, self.page_size)
            if items:
                yield items
            if len(items) < self.page_size:
                return
            number += 1

    async def __aiter__(self) -> AsyncIterator[T]:
        async for items in self.pages():
            for item in items:
                yield item

    async def to_list(self, *, limit: int | None = None) -> list[T]:
        """Collect every item (or the first ``limit``) into a list."""
        result: list[T] = []
        async for item in self:
            if limit is not None and len(result) >= limit:
                break
            result.append(item)
        return result


def no_raw_form(name: str) -> AttributeError:
    """The error for a raw view's method that returns a :class:`Paginator`, not an awaitable."""
    return AttributeError(
        f"{name} has no raw-response form (only awaitable methods do; it returns a Paginator, "
        "whose pages are fetched with .page(n))"
    )


def require_model(
    value: object, cls: type[T], *, param: str, method: str, build: str, instead: str = ""
) -> T:
    """``value`` when it is a ``cls``; else an :class:`InvalidArgumentError` naming the
    parameter, what it takes (``build``: how to make one) and what was given. A dict is
    never taken for a model: the model is what checks and spells the wire form. ``instead``
    says where a value of a neighbouring type belongs (a NewChild given to ``create``)."""
    if isinstance(value, cls):
        return value
    got = type(value).__name__
    message = f"{method}: {param} must be a {cls.__name__} (build it with {build}), got {got}"
    if isinstance(value, Mapping):
        message += "; a dict is not converted"
        if hasattr(cls, "from_wire"):
            message += f" (for a body in CommBox's wire form: {cls.__name__}.from_wire(...))"
    elif instead:
        message += f"; {instead}"
    raise InvalidArgumentError(message, param=param, expected=cls.__name__, got=got)


def require_encrypted(value: str, name: str = "encrypted_stream_id") -> str:
    """An encrypted stream id (SMS and WhatsApp paths refuse the numeric one)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be the channel's encrypted id (a non-empty string)")
    if value.strip().isdecimal():
        raise ConfigurationError(
            f"{name} must be the channel's encrypted id, not the numeric stream id {value!r}"
        )
    return value


def require_int(value: int | str, name: str) -> int:
    """A numeric id (some endpoints refuse encrypted string ids)."""
    if isinstance(value, bool):
        raise ConfigurationError(f"{name} must be a number, got a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value.strip())
    raise ConfigurationError(f"{name} must be a numeric id, got {value!r}")
