"""URLs and paths: the base URL's checks, and every path parameter as exactly one segment."""

from __future__ import annotations

import functools
import ipaddress
import re
import string
from collections.abc import Mapping
from urllib.parse import quote

import httpx

from ._exceptions import ConfigurationError

__all__ = ["build_path", "check_base_url", "encode_segment", "is_loopback", "url_prefix"]

_FIELD_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> httpx.URL:
    """Parse a base URL: HTTPS, or plain HTTP to a loopback host only."""
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigurationError(f"invalid base_url {base_url!r}: {exc}") from None
    if url.scheme not in ("https", "http") or not url.host:
        raise ConfigurationError(
            f"base_url must be an absolute https:// URL such as https://api.commbox.io, "
            f"got {base_url!r}"
        )
    if url.scheme == "http" and not is_loopback(url.host):
        raise ConfigurationError(
            f"refusing plain-HTTP base_url {base_url!r}: CommBox is served over HTTPS only and the "
            "token must not travel in clear text (http:// is allowed only for loopback hosts)"
        )
    if url.query or url.fragment:
        raise ConfigurationError(f"base_url must not have a query or fragment, got {base_url!r}")
    return url


_UNRESERVED = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9_.~-]*")


def encode_segment(value: object, *, name: str = "path parameter") -> str:
    """Percent-encode a value as exactly one path segment.

    ``/``, ``?``, ``#``, ``%`` and ``=`` are all escaped, and a segment that is ``.`` or ``..``
    is escaped too, so no id can change the path or the query.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigurationError(f"{name} must be an int or a str, got {type(value).__name__}")
    text = str(value)
    if text == "":
        raise ConfigurationError(f"{name} must not be empty")
    if _UNRESERVED.fullmatch(text):
        return text  # the usual id: nothing to escape, and it cannot be "." or ".."
    try:
        encoded = quote(text, safe="")
    except UnicodeEncodeError as exc:  # a lone surrogate has no UTF-8 form
        raise ConfigurationError(
            f"{name} is not valid text: no UTF-8 form for the character at position "
            f"{exc.start + 1} ({text[exc.start]!r})"
        ) from None
    if encoded in (".", ".."):
        encoded = encoded.replace(".", "%2E")
    return encoded


@functools.lru_cache(maxsize=1024)
def _parse_template(template: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A path template's literal pieces and field names (checked once per template)."""
    # Literal parts of the template come from this library, never from callers' data; still,
    # refuse anything that is not a plain path.
    literal = _FIELD_RE.sub("", template)
    if (
        not template.startswith("/")
        or any(c in literal for c in "?#%")
        or any(c in string.whitespace for c in literal)
    ):
        raise ConfigurationError(
            f"path template must be a plain path starting with '/': {template!r}"
        )
    pieces = _FIELD_RE.split(template)  # literal, name, literal, name, ..., literal
    return tuple(pieces[0::2]), tuple(pieces[1::2])


def build_path(template: str, params: Mapping[str, object]) -> str:
    """Fill ``{name}`` fields of a path template, each value encoded as one segment."""
    literals, names = _parse_template(template)
    if len(params) != len(names):
        raise _path_fields_error(template, names, params)
    # Concatenation and a plain loop rather than a join or a generator: no container objects
    # per call (with many calls in flight, each one is more work for the garbage collector).
    path = literals[0]
    for i in range(len(names)):
        name = names[i]
        if name not in params:
            raise _path_fields_error(template, names, params)
        value = params[name]
        # An int (not a bool) is digits and "-": nothing to escape, so no call for it (the
        # one place ints are short-cut; encode_segment gives the same text, more slowly).
        segment = str(value) if type(value) is int else encode_segment(value, name=name)
        path = path + segment + literals[i + 1]
    return path


def _path_fields_error(
    template: str, names: tuple[str, ...], params: Mapping[str, object]
) -> ConfigurationError:
    missing = [n for n in names if n not in params]
    if missing:
        return ConfigurationError(f"path {template!r} needs values for {', '.join(missing)}")
    extra = sorted(set(params) - set(names))
    return ConfigurationError(f"path {template!r} has no field named {', '.join(extra)}")


def url_prefix(base: httpx.URL) -> str:
    """The base URL as the string every request URL starts with (no trailing slash)."""
    return str(base).rstrip("/")
