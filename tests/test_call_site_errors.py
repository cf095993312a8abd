"""The errors a newcomer meets first, each with its type and its whole message: a wrong argument
type at the call site, a hook that is not callable, a missing extra, the CLI's own words."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from commbox_async import (
    AsyncCommBox,
    ConfigurationError,
    CustomIndicator,
    Hooks,
    InvalidArgumentError,
    MissingExtraError,
    NewChild,
    NewObject,
    RequestEvent,
)
from commbox_async import cli as cli_module
from commbox_async.models import ManagerData
from commbox_async.testing import FakeCommBox

pytestmark = pytest.mark.anyio

SMS = NewObject.sms(user_stream_provider_id="972500000000", message="hi")
CHILD = NewChild.from_agent(
    user_identity=36574658,
    user_stream_provider_id="customer@example.com",
    user_stream_provider_type=4,
    message="Any questions?",
)

# -- a wrong type where a model is expected -----------------------------------------------------

Call = Callable[[AsyncCommBox, Any], Awaitable[Any]]

CASES: list[tuple[str, Call, str, str]] = [
    (
        "cb.objects.create()",
        lambda cb, v: cb.objects.create(532, v),
        "new_object",
        "NewObject (build it with NewObject.email/sms/sms_many/whatsapp_template/chat)",
    ),
    (
        "cb.objects.create_child()",
        lambda cb, v: cb.objects.create_child(532, 1, v),
        "new_child",
        "NewChild (build it with NewChild.from_agent/from_customer)",
    ),
    (
        "cb.objects.create_child_for_provider()",
        lambda cb, v: cb.objects.create_child_for_provider(532, "a@b.example", 4, v),
        "new_child",
        "NewChild (build it with NewChild.from_agent/from_customer)",
    ),
    (
        "cb.objects.set_indicator()",
        lambda cb, v: cb.objects.set_indicator(1, v),
        "indicator",
        "CustomIndicator (build it with CustomIndicator(indicator_id=..., title=..., icon=...))",
    ),
    (
        "cb.users.update()",
        lambda cb, v: cb.users.update(1, v),
        "info",
        "UserInfo (build it with UserInfo(...))",
    ),
    (
        "cb.managers.create()",
        lambda cb, v: cb.managers.create(v),
        "manager",
        "ManagerData (build it with ManagerData(first_name=...))",
    ),
    (
        "cb.managers.update()",
        lambda cb, v: cb.managers.update(1, v),
        "manager",
        "ManagerData (build it with ManagerData(first_name=...))",
    ),
    (
        "cb.whatsapp.send_template()",
        lambda cb, v: cb.whatsapp.send_template("hNyRN_fLUy7rrOrN9jLpipA==", [v]),
        "messages[0]",
        "TemplateMessage (build it with TemplateMessage(to=..., name=..., language=...))",
    ),
    (
        "cb.whatsapp.emarsys_send_template()",
        lambda cb, v: cb.whatsapp.emarsys_send_template("hNyRN_fLUy7rrOrN9jLpipA==", v, jwt="j"),
        "template",
        "EmarsysTemplate (build it with EmarsysTemplate(...))",
    ),
]


@pytest.mark.parametrize(("method", "call", "param", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_a_dict_where_a_model_is_expected(
    method: str, call: Call, param: str, expected: str
) -> None:
    fake = FakeCommBox()
    async with fake.client() as cb:
        with pytest.raises(InvalidArgumentError) as info:
            await call(cb, {"Message": "hi"})
    err = info.value
    assert isinstance(err, TypeError) and isinstance(err, ConfigurationError)
    assert (err.param, err.got) == (param, "dict")
    message = f"{method}: {param} must be a {expected}, got dict; a dict is not converted"
    assert str(err).startswith(message)
    assert fake.requests == []  # refused before anything was sent


async def test_a_dict_is_pointed_at_from_wire_when_the_model_has_it() -> None:
    async with FakeCommBox().client() as cb:
        with pytest.raises(InvalidArgumentError) as info:
            await cb.objects.create(532, {"Message": "hi"})
    assert str(info.value) == (
        "cb.objects.create(): new_object must be a NewObject (build it with "
        "NewObject.email/sms/sms_many/whatsapp_template/chat), got dict; a dict is not "
        "converted (for a body in CommBox's wire form: NewObject.from_wire(...))"
    )


async def test_a_new_child_is_not_a_new_conversation() -> None:
    fake = FakeCommBox()
    async with fake.client() as cb:
        with pytest.raises(InvalidArgumentError) as info:
            await cb.objects.create(532, CHILD)
        assert str(info.value) == (
            "cb.objects.create(): new_object must be a NewObject (build it with "
            "NewObject.email/sms/sms_many/whatsapp_template/chat), got NewChild; a NewChild is "
            "a message in a conversation: cb.objects.create_child()"
        )
        with pytest.raises(InvalidArgumentError) as info:
            await cb.objects.create_child(532, 1, SMS)
        assert str(info.value).endswith(
            "got NewObject; a NewObject starts a conversation: cb.objects.create()"
        )
    assert fake.requests == [] and fake.objects == {}


async def test_the_right_models_still_go_through() -> None:
    fake = FakeCommBox()
    async with fake.client() as cb:
        object_id = await cb.objects.create(532, SMS)
        await cb.objects.create_child(532, object_id, CHILD)
        await cb.objects.set_indicator(object_id, CustomIndicator(indicator_id="vip", icon="x"))
        assert await cb.managers.create(ManagerData(user_name="dana", email="d@x.example"))


# -- hooks ---------------------------------------------------------------------------------------


async def test_hooks_take_a_single_callable_as_the_readme_writes_it() -> None:
    seen: list[RequestEvent] = []
    async with FakeCommBox().client(hooks=Hooks(on_request=seen.append)) as cb:
        await cb.objects.create(532, SMS)
    assert [e.method for e in seen] == ["POST"]
    both = Hooks(on_request=[seen.append, print], on_retry=(print,))
    assert both.on_request == (seen.append, print) and both.on_retry == (print,)


TAKES = "takes a callable or a sequence of callables, got"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"on_request": 3}, f"Hooks(on_request=...) {TAKES} int"),
        ({"on_response": "log"}, f"Hooks(on_response=...) {TAKES} str"),
        ({"on_retry": [print, None]}, "Hooks(on_retry=...): item 1 is NoneType, not a callable"),
        ({"on_throttle": {print}}, f"Hooks(on_throttle=...) {TAKES} set"),
    ],
)
def test_a_hook_that_is_not_callable_is_refused_at_construction(
    kw: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Hooks(**kw)
    assert isinstance(info.value, TypeError)
    assert str(info.value) == message


# -- a missing extra names its pip install line -------------------------------------------------


def hide(monkeypatch: pytest.MonkeyPatch, *packages: str) -> None:
    """Make ``packages`` (and their submodules) unimportable, as if not installed."""
    for name in list(sys.modules):
        if name.split(".")[0] in packages:
            monkeypatch.setitem(sys.modules, name, None)
    for name in packages:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize(
    ("module", "package", "extra"),
    [
        ("commbox_async.webhooks.starlette", "starlette", "webhooks"),
        ("commbox_async.webhooks.aiohttp", "aiohttp", "aiohttp"),
    ],
)
def test_a_receiver_without_its_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, package: str, extra: str
) -> None:
    hide(monkeypatch, package)
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ImportError) as info:
        importlib.import_module(module)
    err = info.value
    assert isinstance(err, MissingExtraError) and (err.extra, err.name) == (extra, package)
    assert str(err) == (
        f"{module} needs the {extra!r} extra (no module named {package!r}): "
        f"pip install 'commbox-async[{extra}]'"
    )


def test_the_fake_without_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "starlette")
    with pytest.raises(MissingExtraError) as info:
        FakeCommBox()
    assert isinstance(info.value, ImportError)
    assert str(info.value) == (
        "FakeCommBox needs the 'fake' extra (no module named 'starlette'): "
        "pip install 'commbox-async[fake]'"
    )


def test_the_redis_throttle_without_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from commbox_async.redis_throttle import RedisThrottle

    hide(monkeypatch, "redis")
    with pytest.raises(MissingExtraError) as info:
        RedisThrottle("redis://127.0.0.1:6379/0", key="k", rate=10)
    assert isinstance(info.value, ImportError)
    assert str(info.value) == (
        "RedisThrottle needs the 'redis' extra (no module named 'redis'): "
        "pip install 'commbox-async[redis]'"
    )


def test_the_pytest_fixtures_without_the_extra(tmp_path: Path) -> None:
    """The plugin loads in any pytest run; a test that asks for a fixture is told the line."""
    (tmp_path / "conftest.py").write_text(
        "import sys\nfor n in [m for m in sys.modules if m.split('.')[0] == 'starlette']:\n"
        "    sys.modules[n] = None\nsys.modules['starlette'] = None\n"
    )
    (tmp_path / "test_app.py").write_text(
        textwrap.dedent(
            """
            def test_plain():
                pass

            def test_uses_the_fake(commbox_client):
                pass
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    out = result.stdout + result.stderr
    assert "1 passed, 1 error" in out, out
    assert "MissingExtraError: FakeCommBox needs the 'fake' extra" in out
    assert "pip install 'commbox-async[fake]'" in out


# -- the CLI speaks in its own flags -------------------------------------------------------------


def test_the_cli_missing_token_names_its_flag_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMBOX_TOKEN", raising=False)
    result = CliRunner().invoke(cli_module.cli, ["get-object", "532", "1"])
    assert result.exit_code == 1
    assert " ".join(result.output.split()) == (
        "error: ConfigurationError: no CommBox token: pass --token or set COMMBOX_TOKEN (an "
        "admin finds the API key under Settings > API)"
    )
    assert "token=" not in result.output


def test_the_cli_bad_base_url_names_its_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(
        cli_module.cli, ["get-object", "532", "1", "--token", "t", "--base-url", "http://x.example"]
    )
    assert result.exit_code == 1
    assert "error: ConfigurationError: --base-url / COMMBOX_BASE_URL: refusing plain-HTTP" in (
        " ".join(result.output.split())
    )


def test_set_status_lists_the_valid_names() -> None:
    for bad in ("Closed", "99"):
        result = CliRunner().invoke(cli_module.cli, ["set-status", "1", bad, "--token", "t"])
        assert result.exit_code == 2
        assert (
            f"Invalid value for STATUS: unknown status {bad!r}; one of: Open (1), Resolved (2), "
            "Forward (3), Irrelevant (4), Deleted (5), ForwardReply (6), Draft (7), "
            "InProcess (8), Scheduled (9), FollowUp (10), Automated (11), Sent (13), "
            "Archive (14), Pending (15)"
        ) in " ".join(result.output.split())


def test_set_status_takes_a_name_or_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    import anyio

    fake = FakeCommBox()

    async def seed() -> int:
        async with fake.client() as cb:
            return await cb.objects.create(532, SMS)

    object_id = str(anyio.run(seed))
    monkeypatch.setattr(cli_module, "_make_client", lambda *a, **kw: fake.client())
    for status in ("in process", "InProcess", "8"):
        result = CliRunner().invoke(cli_module.cli, ["set-status", object_id, status])
        assert f"object {object_id}: status set to IN_PROCESS (8)" in result.output


def test_version() -> None:
    from commbox_async import __version__

    result = CliRunner().invoke(cli_module.cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"commbox (commbox-async) {__version__}\n"


@pytest.mark.parametrize(
    "command", ["send-bulk", "reconcile", "export", "get-object", "set-status"]
)
def test_every_command_that_calls_commbox_states_the_rate_limit(command: str) -> None:
    result = CliRunner().invoke(cli_module.cli, [command, "--help"], terminal_width=200)
    text = " ".join(result.output.split())
    assert "--rate-limit N|ADAPTIVE|OFF" in text
    assert "Default: $COMMBOX_RATE_LIMIT, else 10/s, burst 10." in text
    assert "'adaptive'" in text and "'off'" in text


@pytest.mark.parametrize(
    ("args", "env", "shown"),
    [
        ([], None, "10/s, burst 10 (default)"),
        ([], "25", "25/s, burst 25 (COMMBOX_RATE_LIMIT)"),
        (["--rate-limit", "40"], "25", "40/s, burst 40 (--rate-limit)"),
        (["--rate-limit", "off"], None, "off (--rate-limit)"),
        (["--rate-limit", "adaptive"], None, "adaptive, now 10.0/s, burst 10 (--rate-limit)"),
    ],
)
def test_the_rate_limit_a_command_runs_with(
    monkeypatch: pytest.MonkeyPatch, args: list[str], env: str | None, shown: str
) -> None:
    if env is None:
        monkeypatch.delenv("COMMBOX_RATE_LIMIT", raising=False)
    else:
        monkeypatch.setenv("COMMBOX_RATE_LIMIT", env)
    made: list[Any] = []

    def make(token: str | None, base_url: str | None, *, rate_limit: Any) -> AsyncCommBox:
        made.append(rate_limit)
        return cli_module.__dict__["_real_make_client"](token, base_url, rate_limit=rate_limit)

    monkeypatch.setattr(cli_module, "_real_make_client", cli_module._make_client, raising=False)
    monkeypatch.setattr(cli_module, "_make_client", make)
    base = ["get-object", "532", "1", "--token", "t", "--base-url", "http://127.0.0.1:9"]
    result = CliRunner().invoke(cli_module.cli, [*base, *args])
    assert result.exit_code == 1  # nothing listens there
    (setting,) = made
    assert str(setting) == shown


def test_a_bad_rate_limit_variable_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMBOX_RATE_LIMIT", "fast")
    result = CliRunner().invoke(cli_module.cli, ["get-object", "532", "1", "--token", "t"])
    assert result.exit_code == 2
    assert (
        "Invalid value for '--rate-limit': COMMBOX_RATE_LIMIT must be a positive number of "
        "requests/s, 'adaptive' or 'off', got 'fast'"
    ) in " ".join(result.output.split())


# -- COMMBOX_LOG ----------------------------------------------------------------------------------

PROBE = (
    "import logging, warnings; warnings.simplefilter('error'); import commbox_async; "
    "lib = logging.getLogger('commbox_async'); "
    "print(lib.level, [type(h).__name__ for h in lib.handlers], len(logging.getLogger().handlers))"
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "0 [] 0"),
        ("debug", "10 ['StreamHandler'] 0"),
        ("INFO", "20 ['StreamHandler'] 0"),
    ],
)
def test_commbox_log_switches_on_the_librarys_logging_and_nothing_else(
    value: str | None, expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COMMBOX_LOG"}
    if value is not None:
        env["COMMBOX_LOG"] = value
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.stdout.strip() == expected, result.stderr


def test_commbox_log_shows_the_records_on_stderr() -> None:
    code = (
        "import anyio, httpx, commbox_async as c\n"
        "async def main():\n"
        "    t = httpx.MockTransport(lambda r: httpx.Response(200, json={'status': '200', "
        "'description': 'ok', 'data': 1}))\n"
        "    async with c.AsyncCommBox(token='t', transport=t) as cb:\n"
        "        await cb.request('GET', '/core/systemstatus')\n"
        "anyio.run(main)\n"
    )
    env = {**os.environ, "COMMBOX_LOG": "debug"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert "DEBUG commbox_async: GET /core/systemstatus -> 200" in result.stderr
    assert "t'" not in result.stderr and "Bearer" not in result.stderr


def test_a_bad_commbox_log_is_a_warning_not_a_crash() -> None:
    env = {**os.environ, "COMMBOX_LOG": "verbose"}
    result = subprocess.run(
        [sys.executable, "-W", "always", "-c", "import commbox_async"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0
    assert "RuntimeWarning: COMMBOX_LOG='verbose' is ignored: use COMMBOX_LOG=debug or" in (
        result.stderr
    )


def test_send_bulk_and_export_show_the_rate_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .conftest import serve_in_thread

    monkeypatch.delenv("COMMBOX_RATE_LIMIT", raising=False)
    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"key": "a", "channel": "sms", "user_stream_provider_id": "972500000001", '
        '"message": "hi"}\n'
    )
    fake = FakeCommBox()
    with serve_in_thread(fake) as url:
        common = ["--token", "t", "--base-url", url]
        journal, outcomes = str(tmp_path / "j.sqlite"), str(tmp_path / "o.jsonl")
        bulk = ["send-bulk", "--stream", "532", "--input", str(src)]
        bulk += ["--journal", journal, "--outcomes", outcomes, *common]
        sent = CliRunner().invoke(cli_module.cli, bulk)
        monkeypatch.setattr(cli_module.console, "width", 120)  # sent's check was at 80 columns
        refs = tmp_path / "refs.txt"
        refs.write_text(f"532,{fake.all_objects()[0]['objectId']}\n")
        export = ["export", "--input", str(refs), "--out", str(tmp_path / "x.jsonl"), *common]
        exported = CliRunner().invoke(cli_module.cli, [*export, "--rate-limit", "adaptive"])
    assert sent.exit_code == 0, sent.output
    assert "rate limit 10/s (default)" in sent.output  # the progress bar
    assert "│ rate limit " in sent.output and "10/s, burst 10 (default)" in sent.output
    assert exported.exit_code == 0, exported.output
    assert "rate limit adaptive, now 10.0/s (--rate-limit)" in exported.output
    assert "adaptive, now 10.0/s, burst 10 (--rate-limit)" in exported.output
