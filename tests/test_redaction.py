"""The token is unreachable from any error: its str, repr, attributes (walked recursively), its
chain, and its traceback rendered with every frame's locals, on both transports."""

from __future__ import annotations

import pickle
import threading
import traceback
from typing import Any

import anyio
import httpx
import pytest

from commbox_async import AsyncCommBox, AuthenticationError, CommBoxError, ConfigurationError
from commbox_async._base_client import TokenProvider
from commbox_async._secret import Secret

from .conftest import TOKEN, envelope, make_client, socket_client
from .rawserver import raw_server, respond, unused_port

pytestmark = pytest.mark.anyio

HTML = b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 13\r\n\r\n<html></html>"


def reachable_texts(exc: BaseException) -> list[str]:
    """Everything an error reporter could show of an exception: its str and repr, every
    attribute reachable from it (recursively), its cause and context chain, and its
    traceback rendered with locals."""
    texts: list[str] = []
    seen: set[int] = set()

    def walk(value: Any, depth: int) -> None:
        if id(value) in seen or depth > 8:
            return
        seen.add(id(value))
        try:
            texts.append(repr(value))
            texts.append(str(value))
        except Exception:
            pass
        if isinstance(value, (str, bytes, int, float, bool)) or value is None:
            if isinstance(value, bytes):
                texts.append(value.decode("latin-1"))
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(k, depth + 1)
                walk(v, depth + 1)
            return
        if isinstance(value, (list, tuple, set, frozenset)):
            for v in value:
                walk(v, depth + 1)
            return
        for name in dir(value):
            if name.startswith("__") and name not in ("__cause__", "__context__", "__dict__"):
                continue
            try:
                attr = getattr(value, name)
            except Exception:
                continue
            if callable(attr) and not isinstance(attr, BaseException):
                continue
            walk(attr, depth + 1)

    walk(exc, 0)
    rendered = traceback.TracebackException.from_exception(exc, capture_locals=True)
    texts.append("".join(rendered.format()))
    return texts


def library_locals(exc: BaseException) -> str:
    """Every local of the library's own frames in the error's traceback (and its chain), as
    a traceback rendered with locals shows them (the test's own frames hold the secret)."""
    rendered = traceback.TracebackException.from_exception(exc, capture_locals=True)
    texts: list[str] = []
    seen: set[int] = set()
    todo = [rendered]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        texts += [repr(f.locals) for f in current.stack if "commbox_async" in f.filename]
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    return "".join(texts)


def assert_no_token(exc: BaseException) -> None:
    for text in reachable_texts(exc):
        assert TOKEN not in text, text[:500]


async def _failure(transport: str, kind: str, **options: Any) -> BaseException:
    behaviours: dict[str, Any] = {
        "timeout": lambda m, p, b: ("hang",),
        "lost": lambda m, p, b: ("close",),
        "401": lambda m, p, b: respond(401),
        "429": lambda m, p, b: respond(429, headers={"Retry-After": "0"}),
        "undecodable": lambda m, p, b: ("raw", HTML, "close"),
    }
    if kind == "refused":
        port = await unused_port()
        async with socket_client(f"http://127.0.0.1:{port}", transport, **options) as cb:
            with pytest.raises(CommBoxError) as info:
                await cb.request("POST", "/x", json={"a": 1})
        return info.value
    async with raw_server(behaviours[kind]) as server:
        async with socket_client(server.url, transport, timeout=0.3, **options) as cb:
            with pytest.raises(CommBoxError) as info:
                await cb.request("POST", "/x", json={"a": 1})
    return info.value


@pytest.mark.parametrize("kind", ["refused", "timeout", "lost", "401", "429", "undecodable"])
@pytest.mark.parametrize("token", ["static", "callable"])
async def test_no_error_reaches_the_token(transport: str, kind: str, token: str) -> None:
    options: dict[str, Any] = {"max_retries": 1}
    if token == "callable":
        options["token"] = lambda: TOKEN
    exc = await _failure(transport, kind, **options)
    assert exc.__cause__ is None
    assert exc.__context__ is None
    assert_no_token(exc)


async def test_a_cancelled_call_leaves_no_token_in_its_traceback(transport: str) -> None:
    """Cancellation passes through the HTTP library's own frames, whose locals hold the
    request's headers in plain bytes: the sender clears them on the way out."""
    captured: list[BaseException] = []
    async with raw_server(lambda m, p, b: ("hang",)) as server:
        async with socket_client(server.url, transport, timeout=10) as cb:
            with anyio.move_on_after(0.3):
                try:
                    await cb.request("POST", "/x", json={"a": 1})
                except BaseException as exc:
                    captured.append(exc)
                    raise
    assert captured
    rendered = traceback.TracebackException.from_exception(captured[0], capture_locals=True)
    assert TOKEN not in "".join(rendered.format())


def test_the_client_and_its_secret_never_show_the_token() -> None:
    cb = AsyncCommBox(token=TOKEN)
    assert TOKEN not in repr(cb) and TOKEN not in str(cb)
    assert TOKEN not in repr(cb._core.token.static)
    with pytest.raises(TypeError):
        pickle.dumps(cb)
    with pytest.raises(TypeError):
        pickle.dumps(Secret(TOKEN))


def test_a_construction_error_does_not_show_the_token_in_its_locals() -> None:
    with pytest.raises(ConfigurationError) as info:
        AsyncCommBox(token=TOKEN, base_url="http://example.com")  # plain HTTP: refused
    rendered = traceback.TracebackException.from_exception(info.value, capture_locals=True)
    frames = [f for f in rendered.stack if "commbox_async" in f.filename]
    assert frames  # the library's own frames are there, with their locals...
    assert all(TOKEN not in repr(f.locals) for f in frames)  # ...but not the token


async def test_a_gateway_echoing_the_token_does_not_put_it_in_the_error(transport: str) -> None:
    """A proxy that answers with the request it got (Authorization included)."""

    def echo(m: str, p: str, b: bytes) -> Any:
        return respond(
            502,
            {"seen": f"Authorization: Bearer {TOKEN}"},
            headers={"x-echo-authorization": f"Bearer {TOKEN}"},
        )

    async with raw_server(echo) as server:
        async with socket_client(server.url, transport, max_retries=0) as cb:
            with pytest.raises(CommBoxError) as info:
                await cb.request("POST", "/x", json={})
    assert_no_token(info.value)
    assert "<redacted>" in str(info.value.body)


async def test_an_echoed_token_is_replaced_by_redacted_wherever_it_is_in_the_body() -> None:
    """In text, in a mapping's keys and values, in a list: each occurrence becomes exactly
    ``<redacted>`` and the rest of what the server said is kept as it was."""

    def echo(request: httpx.Request) -> httpx.Response:
        data = {f"k-{TOKEN}": [f"Bearer {TOKEN}", 1], "other": "kept"}
        return httpx.Response(502, json=envelope(data, status=502, description=f"got {TOKEN}"))

    async with make_client(echo, max_retries=0) as cb:
        with pytest.raises(CommBoxError) as info:
            await cb.request("POST", "/x", json={})
    assert info.value.data == {"k-<redacted>": ["Bearer <redacted>", 1], "other": "kept"}
    assert info.value.description == "got <redacted>"
    assert_no_token(info.value)


async def test_a_jwt_is_not_in_the_locals_of_a_failing_emarsys_call() -> None:
    from commbox_async.models import EmarsysTemplate

    jwt = "eyJhbGciOi.secret-jwt-9876.signature"
    async with raw_server(lambda m, p, b: ("close",)) as server:
        async with socket_client(server.url, "httpx", max_retries=0) as cb:
            template = EmarsysTemplate(to="972500000000", template_name="t", language_code="en")
            with pytest.raises(CommBoxError) as info:
                await cb.whatsapp.emarsys_send_template(
                    "hNyRN_fLUy7rrOrN9jLpipA==", template, jwt=jwt
                )
    assert "messaging.py" in "".join(traceback.format_exception(info.value))
    assert jwt not in library_locals(info.value)


@pytest.mark.parametrize("token", ["tok\u200ben-SECRET", "tok en-SECRET", "tokén-SECRET"])
def test_a_refused_token_is_not_in_the_locals_of_its_error(token: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        AsyncCommBox(token=token)
    assert "_secret.py" in "".join(traceback.format_exception(info.value))
    assert "SECRET" not in library_locals(info.value)


async def test_a_refused_token_from_a_callable_is_not_in_the_locals_of_its_error() -> None:
    async with socket_client("http://127.0.0.1:9", "httpx", token=lambda: "bad token-SECRET") as cb:
        with pytest.raises(ConfigurationError) as info:
            await cb.request("GET", "/x")
    assert "SECRET" not in library_locals(info.value)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (" \n", "the CommBox token is empty"),
        (
            "ab\tcd",
            "the CommBox token has a character that cannot go in an HTTP header at position 3 "
            "of 5 (tokens are visible ASCII: check how it was copied)",
        ),
    ],
)
def test_a_refused_token_is_named_and_its_bad_character_placed(token: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        AsyncCommBox(token=token)
    assert str(info.value) == message


async def test_a_token_may_hold_every_visible_ascii_character() -> None:
    """From ``!`` to ``~``, the ends included: all can go in a header, and are sent as given."""
    visible = "".join(map(chr, range(ord("!"), ord("~") + 1)))
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json=envelope())

    async with make_client(handler, token=visible) as cb:
        await cb.request("GET", "/x")
    assert seen == [f"Bearer {visible}"]


def _failed(name: str) -> BaseException:
    """An exception raised from a frame of its own whose locals hold ``SECRET-<name>``."""
    held = f"SECRET-{name}"
    try:
        raise ValueError(name)
    except ValueError as exc:
        assert held
        return exc


def _locals_shown(exc: BaseException) -> str:
    return "".join(
        repr(frame.f_locals)
        for frame, _ in traceback.walk_tb(exc.__traceback__)
        if frame.f_code is _failed.__code__
    )


def test_clearing_a_chain_clears_every_exception_reached_by_two_ways() -> None:
    """An error whose cause and context lead to the same earlier ones (a diamond): every
    exception of the chain loses its frames' locals, not only those met first."""
    from commbox_async._secret import clear_locals

    root, x, y, z, w = (_failed(n) for n in "RXYZW")
    root.__cause__, root.__context__ = x, y
    y.__cause__, y.__context__ = z, w
    w.__context__ = z  # z is reached through y and through w
    clear_locals(root)
    for exc in (root, x, y, z, w):
        assert "SECRET" not in _locals_shown(exc), exc


def test_clearing_a_chain_that_loops_ends_and_clears_it() -> None:
    """Re-raising the original error from the handler of its translation makes a loop
    (``a.__context__`` is ``b``, ``b.__cause__`` is ``a``): the clearing still ends."""
    from commbox_async._secret import clear_locals

    def translate() -> None:
        held = "SECRET-T"
        try:
            raise ValueError("a")
        except ValueError as a:
            try:
                raise RuntimeError("b") from a
            except RuntimeError:
                assert held
                raise a from None

    with pytest.raises(ValueError) as info:
        translate()
    a = info.value
    assert a.__context__ is not None and a.__context__.__cause__ is a  # the loop
    done = threading.Event()
    worker = threading.Thread(target=lambda: (clear_locals(a), done.set()), daemon=True)
    worker.start()
    assert done.wait(10), "clear_locals did not end on a looping chain"
    frames = [frame for frame, _ in traceback.walk_tb(a.__traceback__)]
    assert all("SECRET" not in repr(frame.f_locals) for frame in frames[1:])


def test_errors_survive_pickling_with_their_verdict() -> None:
    from commbox_async import APIConnectionError, Processed, ServerError
    from commbox_async._exceptions import DecodeError, InvalidResponseError

    errors = [
        APIConnectionError("lost", method="POST", path="/x", processed=Processed.MAYBE),
        ServerError(
            "boom",
            http_status=500,
            envelope_status=None,
            description="d",
            method="POST",
            path="/x",
            headers={"x-request-id": "r1"},
        ),
        InvalidResponseError(
            "html", http_status=200, content_type="text/html", snippet="<", method="POST", path="/x"
        ),
        DecodeError("bad", model="Tag", path="id", value="x"),
    ]
    for error in errors:
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error)
        assert str(again) == str(error)
        assert again.processed is error.processed


def test_pickling_a_token_is_refused_and_says_why() -> None:
    with pytest.raises(TypeError) as raised:
        pickle.dumps(Secret(TOKEN))
    assert str(raised.value) == "a Secret cannot be pickled"
    assert TOKEN not in str(raised.value)


def test_a_secret_shows_only_that_it_is_redacted() -> None:
    secret = Secret(TOKEN)
    assert repr(secret) == str(secret) == f"{secret}" == "<redacted>"
    assert repr([secret]) == "[<redacted>]"  # as a container or a traceback's locals show it
    assert secret.reveal() == TOKEN


@pytest.mark.parametrize("source", [TOKEN, lambda: TOKEN])
def test_a_token_provider_shows_only_that_it_is_redacted(source: Any) -> None:
    assert repr(TokenProvider(source)) == "TokenProvider(<redacted>)"


@pytest.mark.parametrize("rotates", [False, True])
async def test_a_refused_token_says_what_to_check(rotates: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json=envelope(status=401, description="Unauthorized"))

    token: Any = (lambda: TOKEN) if rotates else TOKEN
    async with make_client(handler, token=token) as cb:
        with pytest.raises(AuthenticationError) as raised:
            await cb.request("GET", "/managers")
    if rotates:
        hint = (
            "the token callable was asked again after the first 401 and its new token was "
            "refused too: check what it returns"
        )
    else:
        hint = (
            "check the API token (token= or COMMBOX_TOKEN; an admin finds it under Settings > "
            "API); a key that rotates can be passed as a callable, which is asked again after "
            "a 401"
        )
    assert raised.value.hint == hint
    assert TOKEN not in str(raised.value)


# -- the webhook secret in log records -------------------------------------------------------


def _record(msg: Any, *args: Any, exc_info: Any = None) -> Any:
    import logging

    return logging.LogRecord("x", logging.INFO, __file__, 1, msg, args or None, exc_info)


def test_the_redacting_filter_defaults_to_the_receivers_names() -> None:
    from commbox_async.webhooks import SecretRedactingFilter

    f = SecretRedactingFilter()
    assert repr(f) == "SecretRedactingFilter(param='secret', header='X-CommBox-Secret')"
    assert f.redact("X-CommBox-Secret: s3cret") == "X-CommBox-Secret: ***"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        # A colon alone, a comma alone: each is reason enough to look.
        ("X-CommBox-Secret: s3cret", "X-CommBox-Secret: ***"),
        ("(b'x-commbox-secret', b's3cret')", "(b'x-commbox-secret', b'***')"),
        ("/h?secret=s3cret", "/h?secret=***"),
        ("nothing to hide here", "nothing to hide here"),
    ],
)
def test_the_redacting_filter_finds_each_form_of_the_secret(text: str, redacted: str) -> None:
    from commbox_async.webhooks import SecretRedactingFilter

    assert SecretRedactingFilter().redact(text) == redacted


def test_a_parameter_name_is_matched_as_sent_and_as_percent_encoded() -> None:
    from commbox_async.webhooks import SecretRedactingFilter

    spaced = SecretRedactingFilter(param="my secret")
    assert (
        spaced.redact("/h?my%20secret=a&my secret=b&x=1") == "/h?my%20secret=***&my secret=***&x=1"
    )
    slashed = SecretRedactingFilter(param="a/b")  # "/" is encoded too
    assert slashed.redact("/h?a%2Fb=a&a/b=b") == "/h?a%2Fb=***&a/b=***"


def test_a_mapping_hides_the_secrets_by_name_and_keeps_the_rest() -> None:
    from commbox_async.webhooks import SecretRedactingFilter

    headers = {
        b"X-CommBox-Secret": "plain-1",  # a header name in bytes (ASGI's form)
        "SECRET": "plain-2",  # the query parameter, by name, in any case
        "user-agent": "curl/8",
        "referer": "/h?secret=plain-3",
        "status": 200,
    }
    record = _record("%s %s", headers, "and")
    assert SecretRedactingFilter().filter(record)
    assert record.args == (
        {
            b"X-CommBox-Secret": "***",
            "SECRET": "***",
            "user-agent": "curl/8",
            "referer": "/h?secret=***",
            "status": 200,
        },
        "and",
    )


def test_named_arguments_are_redacted_and_kept_as_a_mapping() -> None:
    from commbox_async.webhooks import SecretRedactingFilter

    record = _record("%(url)s %(code)d", {"url": "/h?secret=plain", "code": 200})
    assert SecretRedactingFilter().filter(record)
    assert record.args == {"url": "/h?secret=***", "code": 200}
    assert record.getMessage() == "/h?secret=*** 200"


class _Request:
    """A request object whose repr shows its URL and whose str does not."""

    def __str__(self) -> str:
        return "<a request>"

    def __repr__(self) -> str:
        return "_Request('/h?secret=plain')"


def test_an_argument_is_redacted_in_the_text_it_is_logged_as() -> None:
    from commbox_async.webhooks import SecretRedactingFilter

    record = _record("%s %r %s", ValueError("/h?secret=plain"), _Request(), 10**5000)
    assert SecretRedactingFilter().filter(record)
    error, request, number = record.args
    assert error == "/h?secret=***"  # its str: what %s shows
    assert request == "_Request('/h?secret=***')"  # its repr, which alone held the secret
    assert number == 10**5000  # a number is kept, even one too long to be shown by str()


class _ShownByReprOnly:
    """An object whose str raises and whose repr shows the secret: ``%r`` still shows it."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        return "_ShownByReprOnly('/h?secret=plain')"


def test_an_argument_whose_str_fails_is_redacted_in_its_repr() -> None:
    from commbox_async.webhooks import SecretRedactingFilter

    record = _record("got %r", _ShownByReprOnly())
    assert SecretRedactingFilter().filter(record)
    assert record.args == ("_ShownByReprOnly('/h?secret=***')",)
    assert "plain" not in record.getMessage()


def test_an_exception_never_raised_is_redacted_too() -> None:
    from commbox_async.webhooks import SecretRedactingFilter

    error = ValueError("bad request line '/h?secret=plain'")
    record = _record("failed", exc_info=(ValueError, error, None))  # no traceback
    assert SecretRedactingFilter().filter(record)
    assert record.exc_info is None
    assert record.exc_text == "ValueError: bad request line '/h?secret=***'"


def test_an_extra_field_holding_the_secret_keeps_its_redacted_text() -> None:
    from commbox_async.webhooks import SecretRedactingFilter

    record = _record("%s", "done")
    record.first_request_line = "POST /h?secret=plain HTTP/1.1"
    assert SecretRedactingFilter().filter(record)
    assert record.first_request_line == "POST /h?secret=*** HTTP/1.1"


def test_an_extra_of_any_type_holding_the_secret_is_redacted() -> None:
    """``logger.info(..., extra={"url": request.url})``: an object whose text holds the secret
    is replaced by its redacted text; the record's own attributes are left as they are."""
    from commbox_async.webhooks import SecretRedactingFilter

    class Url:
        def __str__(self) -> str:
            return "https://h/hook?secret=plain"

    record = _record("%s", "done")
    record.url = Url()
    record.attempts = [1, 2]
    created = record.created
    assert SecretRedactingFilter().filter(record)
    assert record.url == "https://h/hook?secret=***"
    assert record.attempts == [1, 2] and record.created == created


class _Unprintable:
    """An object whose str and repr raise (a half-built object, a lazy proxy)."""

    def __str__(self) -> str:
        raise RuntimeError("cannot be shown")

    __repr__ = __str__


class _Incomparable:
    """An object that cannot be compared for (in)equality, as a numpy array or a DataFrame."""

    def __eq__(self, other: object) -> bool:
        raise ValueError("the truth value of an array is ambiguous")

    __ne__ = __eq__
    __hash__ = object.__hash__

    def __str__(self) -> str:
        return "[1 2 3]"


@pytest.mark.parametrize("odd", [_Unprintable, _Incomparable])
def test_an_extra_that_cannot_be_shown_or_compared_does_not_unhide_the_next_one(
    odd: type,
) -> None:
    """Each extra is redacted on its own: one the filter cannot turn into text (its str
    raises) or compare (its ``!=`` raises) is left as it is, and the extras after it, the
    header mapping and the request line, still lose the secret."""
    from commbox_async.webhooks import SecretRedactingFilter

    record = _record("%s", "done")
    thing = odd()
    record.thing = thing
    record.headers = {"X-CommBox-Secret": "plain-1", "other": odd()}
    record.request_line = "GET /h?secret=plain-2 HTTP/1.1"
    assert SecretRedactingFilter().filter(record)
    assert record.thing is thing
    assert record.headers["X-CommBox-Secret"] == "***"
    assert record.request_line == "GET /h?secret=*** HTTP/1.1"


def test_an_extra_the_filter_fails_on_does_not_unhide_the_ones_after_it() -> None:
    """A mapping that holds itself cannot be redacted (its items never end: a RecursionError):
    it is left as it is, and the extras after it still lose the secret."""
    from commbox_async.webhooks import SecretRedactingFilter

    record = _record("%s", "done")
    loop: dict[str, Any] = {}
    loop["me"] = loop
    record.loop = loop
    record.request_line = "GET /h?secret=plain HTTP/1.1"
    assert SecretRedactingFilter().filter(record)
    assert record.loop is loop
    assert record.request_line == "GET /h?secret=*** HTTP/1.1"


class _IncomparableUrl(_Incomparable):
    def __str__(self) -> str:
        return "https://h/hook?secret=plain"


def test_an_extra_that_cannot_be_compared_and_holds_the_secret_is_redacted() -> None:
    """An extra whose ``!=`` raises (a numpy array of URLs, say) cannot be told unchanged
    from its redacted text: it is replaced by that text all the same."""
    from commbox_async.webhooks import SecretRedactingFilter

    record = _record("%s", "done")
    record.url = _IncomparableUrl()
    assert SecretRedactingFilter().filter(record)
    assert type(record.url) is str and record.url == "https://h/hook?secret=***"


def test_an_argument_that_cannot_be_shown_does_not_unhide_the_others() -> None:
    from commbox_async.webhooks import SecretRedactingFilter

    thing = _Unprintable()
    record = _record("%s %s", thing, "/h?secret=plain")
    assert SecretRedactingFilter().filter(record)
    assert record.args == (thing, "/h?secret=***")


def test_each_receiver_adds_one_filter_for_its_names_to_its_servers_loggers() -> None:
    import logging

    from commbox_async.webhooks import SecretRedactingFilter, WebhookRouter
    from commbox_async.webhooks.starlette import webhook_app

    loggers = [logging.getLogger(n) for n in ("uvicorn.access", "uvicorn.error", "")]
    before = [list(logger.filters) for logger in loggers]
    try:
        for logger in loggers[:2]:
            logger.addFilter(logging.Filter("unrelated"))  # another filter is left alone
        webhook_app(WebhookRouter(), secret_param="key-1", secret_header="X-One")
        webhook_app(WebhookRouter(), secret_param="key-1", secret_header="X-One")  # once
        webhook_app(WebhookRouter(), secret_param="key-2", secret_header="X-Two")
        for logger, had in zip(loggers[:2], before):
            added = [
                (f.param, f.header)
                for f in logger.filters[len(had) :]
                if isinstance(f, SecretRedactingFilter)
            ]
            assert added == [("key-1", "X-One"), ("key-2", "X-Two")], logger.name
        assert loggers[2].filters == before[2]  # the root logger is not touched
    finally:
        for logger, had in zip(loggers, before):
            logger.filters[:] = had
