"""What both receivers share: secret check, reading the body under its limits, parsing, the
answer, and keeping the secret out of access logs."""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import anyio
import attrs

from .._exceptions import ConfigurationError
from .._inflate import BadEncoding, inflater, read_inflated
from .._json import DEFAULT_MAX_DEPTH
from ._parse import DEFAULT_MAX_BYTES, WebhookParseError, WebhookTooLargeError, parse_event
from .events import Event

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "TRIGGERS",
    "ReceiverConfig",
    "SecretRedactingFilter",
    "Verdict",
    "check",
    "read_body",
    "redact_server_logs",
]

#: Seconds a receiver waits for a whole body (after the headers) before answering 408.
DEFAULT_BODY_TIMEOUT = 5.0

#: One route per trigger: "/object/onnewchild" -> ("Object", "OnNewChild").
TRIGGERS: dict[str, tuple[str, str]] = {
    f"{sub.lower()}/{name.lower()}": (sub, name)
    for sub, names in {
        "Object": ("OnNew", "OnNewChild", "OnNewActivity", "OnUpdateTag", "OnAssign", "OnUnAssign"),
        "User": ("OnNew", "OnUpdate", "OnUpdateTag", "Login", "Logout"),
        "Satisfaction": ("OnSubmit",),
        "Tag": ("OnAdd", "OnUpdate", "OnDelete", "OnAddGroup", "OnUpdateGroup", "OnDeleteGroup"),
        "Form": ("OnSubmit",),
        "Chat": ("OnUserExit",),
    }.items()
    for name in names
}


@attrs.frozen(kw_only=True)
class ReceiverConfig:
    """A receiver's options.

    - ``secret``: compared in constant time with the ``secret_header`` header
      (``X-CommBox-Secret``, the recommended form: headers stay out of access logs) or the
      ``secret_param`` query parameter (``?secret=``; see :class:`SecretRedactingFilter`).
    - ``max_bytes``: the body limit (1 MiB; 413 above it, and reading stops there).
    - ``body_timeout``: seconds for the whole body to arrive (5; 408 after it, so a client
      dripping its body cannot hold a connection).
    - ``max_depth``: XML/JSON nesting limit (256; 400 above it).
    - ``background``: answer 200 first and run the handlers afterwards (otherwise 200 only
      after they succeed, 500 if one fails, so CommBox re-delivers).
    - ``redact_access_log``: add a :class:`SecretRedactingFilter` for ``secret_param`` and
      ``secret_header`` to the server's access and error loggers (``aiohttp.access`` and
      ``aiohttp.server``, or ``uvicorn.access`` and ``uvicorn.error``), once.
    """

    secret: str | None = attrs.field(default=None, repr=False)
    secret_param: str = "secret"  # noqa: S105 - a parameter name, not a secret
    secret_header: str = "X-CommBox-Secret"  # noqa: S105 - a header name
    max_bytes: int = DEFAULT_MAX_BYTES
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    max_depth: int = DEFAULT_MAX_DEPTH
    background: bool = False
    redact_access_log: bool = True

    def __attrs_post_init__(self) -> None:
        if not (self.body_timeout > 0):
            raise ConfigurationError(f"body_timeout must be positive, got {self.body_timeout!r}")
        if type(self.max_depth) is not int or self.max_depth < 1:
            raise ConfigurationError(f"max_depth must be a positive int, got {self.max_depth!r}")
        if self.max_bytes < 0:
            raise ConfigurationError(f"max_bytes must not be negative, got {self.max_bytes!r}")


@attrs.frozen
class Verdict:
    status: int
    message: str
    event: Event | None = None
    #: The body could not be read to its end (its framing or encoding is broken, or the
    #: client hung up): what follows on the connection is not a request.
    unreadable: bool = False

    @property
    def close(self) -> bool:
        """Whether the connection must be closed after the answer: the body was not read to
        its end (too large, too slow, unreadable), and reading on would serve the client that
        sent it."""
        return self.status in (408, 413) or self.unreadable


def secret_ok(config: ReceiverConfig, query: Mapping[str, str], headers: Mapping[str, str]) -> bool:
    if config.secret is None:
        return True
    given = query.get(config.secret_param) or headers.get(config.secret_header.lower()) or ""
    return hmac.compare_digest(given.encode(), config.secret.encode())


def _declares_more(declared: str, limit: int) -> bool:
    """Whether a ``Content-Length`` says more than ``limit``; compared by length first, since
    ``int()`` refuses more than 4,300 digits (a ValueError, and a 500, for a crafted header)."""
    digits = declared.strip()
    if not (digits.isascii() and digits.isdigit()):
        return False  # not a length: the server in front refuses it, or the read is capped
    digits = digits.lstrip("0") or "0"
    return len(digits) > len(str(limit)) or int(digits) > limit


class _TooLarge(Exception):
    def __init__(self, *_: object) -> None:
        super().__init__()


async def read_body(
    chunks: AsyncIterator[bytes],
    config: ReceiverConfig,
    *,
    declared: str | None,
    encoding: str | None = None,
    unreadable: tuple[type[Exception], ...] = (),
) -> bytes | Verdict:
    """The body, read under ``max_bytes`` and ``body_timeout``, or the verdict to answer with.

    Reading stops at the first chunk past the limit (or at once, for a ``Content-Length``
    over it), and the caller closes the connection after answering. ``encoding`` is the
    request's ``Content-Encoding`` when the server leaves it to the receiver (Starlette; aiohttp
    decodes it itself): gzip or deflate is inflated a bounded step at a time, so ``max_bytes``
    bounds what the body inflates to; any other is a 415. ``unreadable`` are the server's errors
    for a body it cannot read (broken chunks or ``Content-Encoding``, a client that hung up):
    a 400, not an error of the receiver.
    """
    too_large = Verdict(413, f"payload too large (limit {config.max_bytes} bytes)")
    if declared is not None and _declares_more(declared, config.max_bytes):
        return too_large
    try:
        decoder = inflater({"content-encoding": encoding}, 0) if encoding else None
    except BadEncoding:
        return Verdict(
            415, f"Content-Encoding {encoding!r} is not decoded here (gzip or deflate are)"
        )
    body = bytearray()
    try:
        with anyio.fail_after(config.body_timeout):
            if decoder is not None:
                return await read_inflated(chunks, decoder, config.max_bytes, 0, {}, _TooLarge)
            async for chunk in chunks:
                body += chunk
                if len(body) > config.max_bytes:
                    return too_large
    except _TooLarge:
        return too_large
    except TimeoutError:
        return Verdict(408, f"body not received within {config.body_timeout:g}s")
    except BadEncoding as exc:
        return Verdict(400, f"the request body could not be read: {exc.problem}", unreadable=True)
    except unreadable as exc:
        return Verdict(
            400, f"the request body could not be read ({type(exc).__name__})", unreadable=True
        )
    return bytes(body)


def check(
    config: ReceiverConfig,
    body: bytes,
    *,
    content_type: str | None,
    trigger: str | None,
) -> Verdict:
    """Parse a body for a route; the status a receiver should answer with if it is not 200."""
    kind = TRIGGERS.get(trigger.lower()) if trigger else None
    if trigger and kind is None:
        return Verdict(404, f"no CommBox trigger {trigger!r}")
    try:
        event = parse_event(
            body,
            content_type=content_type,
            subscription=kind[0] if kind else None,
            name=kind[1] if kind else None,
            max_bytes=config.max_bytes,
            max_depth=config.max_depth,
        )
    except WebhookTooLargeError as exc:
        return Verdict(413, str(exc))
    except WebhookParseError as exc:
        return Verdict(400, str(exc))
    return Verdict(200, "ok", event)


# -- access logs -----------------------------------------------------------------------------


class SecretRedactingFilter(logging.Filter):
    """A logging filter that hides the webhook secret in every record it sees: the value of
    the ``param`` query parameter (``?secret=...`` becomes ``?secret=***``) and of the
    ``header`` header (``X-CommBox-Secret: ***``), wherever they appear in the record: the
    message, its arguments (as text, whatever their type), the text of its exception and
    stack, and any text in its extra fields (aiohttp's access log puts the request line
    there). An exception whose text held the secret is replaced by its redacted text.

    The receivers add one to their server's access and error loggers (``aiohttp.access`` and
    ``aiohttp.server``, ``uvicorn.access`` and ``uvicorn.error``; ``redact_access_log=True``):
    aiohttp's error log quotes the request line of a request it cannot parse. Add it yourself
    to any other logger that writes request URLs::

        logging.getLogger("my.access.log").addFilter(SecretRedactingFilter())

    A filter acts on records logged on its own logger, not on those of its children. Better
    still, configure CommBox to send the secret in the ``X-CommBox-Secret`` header, which
    access logs do not show.
    """

    def __init__(self, param: str = "secret", header: str = "X-CommBox-Secret") -> None:
        super().__init__()
        self.param = param
        self.header = header
        names = "|".join(re.escape(n) for n in sorted({param, quote(param, safe="")}))
        # ?secret=VALUE in a URL; "X-CommBox-Secret: VALUE" in a header line, and the header
        # in a mapping's or a pair's repr ({'x-commbox-secret': 'VALUE'}, (b'...', b'VALUE')).
        self._pattern = re.compile(
            rf"([?&;](?:{names})=)[^&;#\s\"'<>]*"
            rf"|({re.escape(header)}['\"]?\s*[:=,]\s*b?['\"]?)[^\s'\"]*",
            re.IGNORECASE,
        )

    def __repr__(self) -> str:
        return f"SecretRedactingFilter(param={self.param!r}, header={self.header!r})"

    def _names_secret(self, key: object) -> bool:
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        return isinstance(key, str) and key.lower() in (self.param.lower(), self.header.lower())

    def redact(self, text: str) -> str:
        if "=" not in text and ":" not in text and "," not in text:
            return text
        return self._pattern.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):  # headers or query parameters, say: the secret's by name
            return {k: "***" if self._names_secret(k) else self._value(v) for k, v in value.items()}
        if isinstance(value, (int, float)) or value is None:
            return value
        # Anything else is logged as its text (%s, %r): the text, if that hides something.
        for show in (str, repr):
            try:
                text = show(value)
            except Exception:  # noqa: S112 - cannot be shown: no handler can show it either
                continue
            redacted = self.redact(text)
            if redacted != text:
                return redacted
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.msg = self._value(record.msg)
            if isinstance(record.args, tuple):
                record.args = tuple(self._value(a) for a in record.args)
            elif isinstance(record.args, dict):
                record.args = self._value(record.args)
            if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
                text = logging.Formatter().formatException(record.exc_info)
                redacted = self.redact(text)
                if redacted != text:
                    # The exception object says it too: the handlers get its redacted text.
                    record.exc_text, record.exc_info = redacted, None
            for key, value in list(vars(record).items()):
                if key in ("msg", "args"):
                    continue
                # An extra of any type (a URL object, say) is shown as its text; the
                # record's own non-text attributes (times, line numbers) cannot hold it.
                if isinstance(value, (str, dict)) or key not in _RECORD_ATTRIBUTES:
                    # Each on its own: one that fails cannot leave the ones after it shown.
                    try:
                        redacted = self._value(value)
                    except Exception:  # noqa: S112 - a self-containing mapping, say
                        continue
                    if redacted is value:
                        continue
                    try:
                        changed = bool(redacted != value)
                    except Exception:  # its ``!=`` raises (a numpy array's does)
                        changed = True
                    if changed:
                        setattr(record, key, redacted)
        except Exception:  # noqa: S110 - a filter must never stop a record, nor raise
            pass
        return True


_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


def redact_server_logs(config: ReceiverConfig, *logger_names: str) -> None:
    """Add a :class:`SecretRedactingFilter` for the config's parameter and header to each
    logger, once."""
    if not config.redact_access_log:
        return
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(
            isinstance(f, SecretRedactingFilter)
            and (f.param, f.header) == (config.secret_param, config.secret_header)
            for f in logger.filters
        ):
            logger.addFilter(SecretRedactingFilter(config.secret_param, config.secret_header))
