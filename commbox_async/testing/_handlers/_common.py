"""What every handler shares: its signature, and reading path ids, query values and bodies.

A handler takes the state, the path parameters, the parsed query and the body (JSON, or a
:class:`Multipart` form), and returns ``(status, data)`` or raises
:class:`~commbox_async.testing._wire.HTTPError`.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from .._state import FakeState
from .._wire import HTTPError

T = TypeVar("T")
P = dict[str, str]
Q = dict[str, list[str]]
Result = tuple[int, Any]
Handler = Callable[[FakeState, P, Q, Any], Result]
#: A module's routes: (method, path template with ``{param}`` segments, handler).
Routes = Sequence[tuple[str, str, Handler]]


@attrs.define
class Multipart:
    """A multipart/form-data body: its text fields and what its files were."""

    fields: dict[str, str]
    files: list[dict[str, Any]]


def known(text: str, ids: Container[int]) -> bool:
    """Whether a path or query value is a decimal id among ``ids`` (the fake's 404 check)."""
    return text.isdecimal() and int(text) in ids


def found(table: Mapping[int, T], key: str, what: str) -> T:
    """The entry of ``table`` a path id names, or a 404 that says ``what`` was not found."""
    if not known(key, table):
        raise HTTPError(404, f"{what} {key} not found")
    return table[int(key)]


def data(body: Any) -> dict[str, Any]:
    """The ``data`` object of a ``{"data": {...}}`` body, or a 400."""
    inner = body.get("data") if isinstance(body, dict) else None
    if isinstance(inner, dict):
        return inner
    raise HTTPError(400, 'Bad Request: the body must be {"data": {...}}')


def text_body(body: Any) -> dict[str, Any]:
    """The body of an activity-log entry or a remark, which must carry ``Text``."""
    fields = data(body)
    if not get(fields, "Text"):
        raise HTTPError(400, "Bad Request: Text is required")
    return fields


def get(fields: Mapping[str, Any], name: str) -> Any:
    """A body field in any casing (CommBox's docs spell them several ways), or ``None``."""
    return {key.lower(): value for key, value in fields.items()}.get(name.lower())


def get_or(fields: Mapping[str, Any], name: str, default: Any) -> Any:
    """A body field in any casing, or ``default`` when it is missing or empty."""
    return get(fields, name) or default


def message(fields: Mapping[str, Any]) -> str:
    """The ``Message`` a new conversation or message must carry, or a 400."""
    text = get(fields, "Message")
    if not isinstance(text, str) or not text.strip():
        raise HTTPError(400, "Bad Request: Message is required")
    return text


def flag(q: Q, name: str) -> bool:
    return any(v.lower() == "true" for v in q.get(name, []))


def one(q: Q, name: str) -> str | None:
    values = q.get(name)
    return values[0] if values else None


def number(q: Q, name: str) -> int | None:
    """A numeric query value, ``None`` when absent or empty, or a 400."""
    values = q.get(name)
    if not values or values[0] == "":
        return None
    try:
        return int(values[0])
    except ValueError:
        raise HTTPError(400, f"Bad Request: {name} must be a number") from None
