"""A credential that no repr, str, log line, traceback or pickle can show."""

from __future__ import annotations

import traceback
from typing import Any, NoReturn

from ._exceptions import ConfigurationError

__all__ = ["Secret", "clear_locals"]


class Secret:
    """A token as the pipeline carries it: redacted everywhere, revealed only by the sender
    at the moment it writes the request's headers."""

    __slots__ = ("_value",)

    def __init__(self, value: str, *, what: str = "the CommBox token") -> None:
        value = value.strip()
        problem = _problem(value, what)
        if problem is not None:
            value = ""  # a traceback rendered with locals must not show what was refused
            raise ConfigurationError(problem)
        self._value = value

    def reveal(self) -> str:
        return self._value

    def scrub(self, value: Any) -> Any:
        """``value`` (text, or JSON: dicts, lists) with this secret replaced by
        ``<redacted>`` wherever it appears: for what a server echoed back of a request."""
        token = self._value
        if isinstance(value, str):
            return value.replace(token, "<redacted>") if token in value else value
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub(v) for v in value]
        return value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


def _problem(value: str, what: str) -> str | None:
    """Why a token cannot be sent, if it cannot. Header values are bytes on the wire: a token
    outside visible ASCII cannot go in one (httpx would raise UnicodeEncodeError, aiohttp send
    mangled bytes). The message names the position only: the character is part of the secret."""
    if not value:
        return f"{what} is empty"
    for i, char in enumerate(value):
        if not "!" <= char <= "~":
            return (
                f"{what} has a character that cannot go in an HTTP header at position "
                f"{i + 1} of {len(value)} (tokens are visible ASCII: check how it was copied)"
            )
    return None


def clear_locals(exc: BaseException) -> None:
    """Clear the local variables of the finished frames an exception passed through.

    A failure inside an HTTP library carries the library's frames, whose locals hold the
    request's headers in plain bytes, and a decoding failure of a secret field the decoders'
    frames, which hold its value: a traceback rendered with locals (error reporters do this)
    would show them. The frames' code and line numbers stay for the traceback.
    """
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)  # skips frames still running
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
