"""What the fake puts on the wire: CommBox's envelope, its error answers, and a finished reply."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

BASE_URL = "https://fake.commbox.test"


def now() -> str:
    """The current time as CommBox writes it in envelopes and records."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope(
    data: Any = None, status: int = 200, description: str = "Operation successful"
) -> dict[str, Any]:
    return {
        "status": str(status),
        "description": description,
        "response_time": now(),
        "data": data,
    }


class HTTPError(Exception):
    """Raised by a handler: the fake answers ``status`` with ``description`` and no data."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


class Described(HTTPError):
    """A 2xx answer with a description of its own and no data."""


@attrs.frozen
class Reply:
    """One HTTP response, as it goes on the wire."""

    status: int
    payload: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def json(cls, status: int, body: Any, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(body).encode(), headers=headers or {})

    @classmethod
    def error(
        cls, status: int, description: str, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """CommBox's envelope for an answer without data."""
        return cls.json(status, envelope(None, status, description), headers)
