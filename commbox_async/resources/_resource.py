"""What every resource namespace shares: the client, and reading ``data`` into types."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .._exceptions import ConfigurationError, InvalidResponseError, NotFoundError
from .._response import Envelope
from ..models import structure

if TYPE_CHECKING:
    from .._client import AsyncCommBox

T = TypeVar("T")

_ID_KEYS = ("objectId", "objectid", "ObjectId", "Id", "id", "childId", "ChildId")


class APIResource:
    """A namespace of methods on one client (or one ``with_options`` view of it)."""

    def __init__(self, client: AsyncCommBox) -> None:
        self._client = client

    @staticmethod
    def _decode(envelope: Envelope, cls: type[T]) -> T:
        return structure(envelope.data, cls)

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
        return structure(data, cls)

    @staticmethod
    def _new_id(envelope: Envelope, *, method: str, path: str) -> int:
        """The id of what a POST created: a bare id, ``{"objectId": ...}``, ``{"Id": ...}``..."""
        data = envelope.data
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        candidate: Any = data
        if isinstance(data, Mapping):
            candidate = next((data[k] for k in _ID_KEYS if k in data), None)
        if isinstance(candidate, bool):
            candidate = None
        if isinstance(candidate, int):
            return candidate
        if isinstance(candidate, str) and candidate.strip().isdigit():
            return int(candidate)
        raise InvalidResponseError(
            "CommBox accepted the request but its response has no id this client recognises; "
            "the object may have been created (see .body)",
            http_status=envelope.http_status,
            content_type=envelope.headers.get("content-type"),
            snippet=json.dumps(envelope.body)[:200],
            method=method,
            path=path,
            body=envelope.body,
        )


def require_int(value: int | str, name: str) -> int:
    """A numeric id (some endpoints refuse encrypted string ids)."""
    if isinstance(value, bool):
        raise ConfigurationError(f"{name} must be a number, got a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ConfigurationError(f"{name} must be a numeric id, got {value!r}")
