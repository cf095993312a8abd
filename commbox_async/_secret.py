"""A credential that no repr, str, log line, traceback or pickle can show."""

from __future__ import annotations

from typing import NoReturn

from ._exceptions import ConfigurationError

__all__ = ["Secret"]


class Secret:
    """A token as the pipeline carries it: redacted everywhere, revealed only by the sender
    at the moment it writes the request's headers."""

    __slots__ = ("_value",)

    def __init__(self, value: str, *, what: str = "the CommBox token") -> None:
        value = value.strip()
        if not value:
            raise ConfigurationError(f"{what} is empty")
        # Header values are bytes on the wire: a token outside visible ASCII cannot be sent
        # (httpx would raise UnicodeEncodeError, aiohttp send mangled bytes). The message
        # names the position only: the character itself is part of the secret.
        for i, char in enumerate(value):
            if not "!" <= char <= "~":
                raise ConfigurationError(
                    f"{what} has a character that cannot go in an HTTP header at position "
                    f"{i + 1} of {len(value)} (tokens are visible ASCII: check how it was copied)"
                )
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")
