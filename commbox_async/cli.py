"""The ``commbox`` command line (needs the ``cli`` extra: click and rich)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

try:
    import click
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table
    from rich.text import Text
except ImportError:  # pragma: no cover - exercised only without the extra
    sys.stderr.write("the commbox command needs the cli extra: pip install 'commbox-async[cli]'\n")
    raise SystemExit(2) from None

import anyio
import attrs

from . import _json
from ._client import AsyncCommBox
from ._exceptions import (
    AuthenticationError,
    BulkStoppedError,
    ClientStateError,
    CommBoxError,
    ConfigurationError,
    InputFileError,
    JournalError,
    PermissionDeniedError,
)
from ._ratelimit import (
    DEFAULT_BURST,
    RATE_LIMIT_ENV,
    RateLimit,
    describe_rate_limit,
    make_throttle,
    parse_rate_limit,
    resolve_rate_limit,
)
from ._throttle import Throttle
from ._urls import check_base_url
from ._version import __version__
from .bulk import (
    DEFAULT_CLOCK_SKEW,
    DEFAULT_SETTLE_AFTER,
    BulkMessage,
    BulkReport,
    Outcome,
    RoundsReport,
)
from .bulk.files import read_lines
from .models import NewObject, ObjectStatusType, unstructure
from .models._enums import OpenIntEnum

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)

if sys.version_info < (3, 11):  # pragma: no cover - the backport anyio installs there
    from exceptiongroup import BaseExceptionGroup


@click.group()
@click.version_option(
    __version__, "--version", prog_name="commbox", message="%(prog)s (commbox-async) %(version)s"
)
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """commbox-async: work with the CommBox API from the shell.

    Every command that calls CommBox takes --token (or $COMMBOX_TOKEN), --base-url (or
    $COMMBOX_BASE_URL) and --rate-limit (or $COMMBOX_RATE_LIMIT; default 10/s, burst 10).
    COMMBOX_LOG=info or debug shows the library's log on stderr.
    """
    ctx.obj = {"debug": debug}


def run(ctx: click.Context, fn: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; print errors as one line (a traceback only with --debug)."""
    try:
        return anyio.run(fn)
    except CommBoxError as exc:
        if ctx.obj and ctx.obj.get("debug"):
            raise
        _print_error(exc)
        raise SystemExit(1) from None


def _print_error(exc: CommBoxError, *, label: str = "error") -> None:
    err_console.print(f"[red]{label}:[/red] {type(exc).__name__}: {exc}", highlight=False)


class RateLimitSetting:
    """The rate limit a command runs with: ``--rate-limit``, else ``$COMMBOX_RATE_LIMIT``,
    else the default (10/s, burst 10). A number's burst is one second's worth of it. The
    progress bar and the summary show it (an adaptive one as its current rate)."""

    def __init__(self, value: RateLimit, source: str) -> None:
        self.value = value
        self.source = source
        self.burst = DEFAULT_BURST if not isinstance(value, float) else max(1, int(value))
        #: The client's throttle, once the client is made (the live rate of an adaptive one).
        self.throttle: Throttle | None = None

    def __str__(self) -> str:
        return self.describe()

    def describe(self, *, burst: bool = True) -> str:
        throttle = self.throttle
        if throttle is None:
            throttle = make_throttle(self.value, self.burst)
        return describe_rate_limit(throttle, self.source, burst=burst)


class _RateLimitType(click.ParamType):  # type: ignore[type-arg]
    name = "N|adaptive|off"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, RateLimitSetting):
            return value
        try:
            return RateLimitSetting(parse_rate_limit(str(value), "--rate-limit"), "--rate-limit")
        except ConfigurationError as exc:
            self.fail(str(exc), param, ctx)


def _rate_limit_default(
    ctx: click.Context, param: click.Parameter, value: RateLimitSetting | None
) -> RateLimitSetting:
    if value is not None:
        return value
    try:
        setting, source = resolve_rate_limit(None, given=False)
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return RateLimitSetting(setting, source)


RATE_LIMIT_HELP = (
    "Client-side limit in requests/s: a number (burst: one second's worth), 'adaptive' "
    "(starts at 10/s and finds the highest rate CommBox grants) or 'off'. "
    f"Default: ${RATE_LIMIT_ENV}, else 10/s, burst 10."
)


def _client_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--token, --base-url and --rate-limit: what every command that calls CommBox takes."""
    f = click.option(
        "--rate-limit",
        type=_RateLimitType(),
        default=None,
        callback=_rate_limit_default,
        help=RATE_LIMIT_HELP,
    )(f)
    f = click.option("--token", envvar="COMMBOX_TOKEN", help="API token (default $COMMBOX_TOKEN).")(
        f
    )
    return click.option(
        "--base-url", envvar="COMMBOX_BASE_URL", help="API base URL (default $COMMBOX_BASE_URL)."
    )(f)


def _make_client(
    token: str | None, base_url: str | None, *, rate_limit: RateLimitSetting
) -> AsyncCommBox:
    """The command's client, with the errors of its settings in the CLI's own words."""
    if not token:
        raise ConfigurationError(
            "no CommBox token: pass --token or set COMMBOX_TOKEN (an admin finds the API key "
            "under Settings > API)"
        )
    base_url = base_url or os.environ.get("COMMBOX_BASE_URL") or None
    if base_url is not None:
        try:
            check_base_url(base_url)
        except ConfigurationError as exc:
            raise ConfigurationError(f"--base-url / COMMBOX_BASE_URL: {exc}") from None
    # The CLI runs on asyncio: aiohttp when the extra is installed, httpx otherwise.
    cb = AsyncCommBox(
        token=token,
        base_url=base_url,
        rate_limit=rate_limit.value,
        burst=rate_limit.burst,
        transport="auto",
    )
    rate_limit.throttle = cb.throttle
    return cb


async def _until_interrupted(stop: anyio.Event, scope: anyio.CancelScope, what: str) -> None:
    """First Ctrl-C: stop taking new work and let in-flight requests finish. Second: cancel
    them (a bulk send records them as uncertain; the journal stays consistent)."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            if not stop.is_set():
                stop.set()
                err_console.print(
                    f"[yellow]stopping:[/yellow] no new {what}; in-flight ones finish "
                    "(Ctrl-C again to cancel them)",
                    highlight=False,
                )
            else:
                scope.cancel()
                return


#: ``commbox send-bulk``'s and ``commbox reconcile``'s exit codes (the README and ``--help``
#: show the same table).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNCERTAIN = 3
EXIT_STOPPED = 4
EXIT_INTERRUPTED = 130

_SEND_BULK_EXIT_CODES = f"""\b
Exit codes (the first that applies):
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C, SIGTERM): re-run the same command to resume
  {EXIT_STOPPED}    stopped: CommBox refused the token (401/403), or the configuration or the
       journal is unusable; nothing more was sent, the rest is pending
  {EXIT_UNCERTAIN}    some messages are uncertain (CommBox may have taken them; see --outcomes)
  {EXIT_FAILED}    some messages failed, or changed since an earlier run sent them
  {EXIT_USAGE}    usage error, duplicate keys, or an input file that cannot be read as
       records: not UTF-8, an unclosed quote, a duplicate column... (nothing sent)
  {EXIT_OK}    every message is sent (now, or by an earlier run)
"""


def _exit_interrupted(signum: int, frame: object) -> None:
    # The work is over and journaled; only the summary is cut short.
    err_console.print("[yellow]interrupted:[/yellow] re-run the same command to resume")
    raise SystemExit(EXIT_INTERRUPTED)


def send_bulk_exit_code(
    counts: Counter[str], *, changed: int, interrupted: bool, stopped: bool
) -> int:
    """The exit code of a ``send-bulk`` run from its counts (see the table in ``--help``)."""
    if interrupted:
        return EXIT_INTERRUPTED
    if stopped:
        return EXIT_STOPPED
    if counts.get("uncertain", 0):
        return EXIT_UNCERTAIN
    if counts.get("failed", 0) or counts.get("pending", 0) or changed:
        return EXIT_FAILED
    return EXIT_OK


@attrs.define
class _Tally:
    """What a send-bulk or reconcile command has settled, as it goes: counts, the outcomes
    file (one flushed line per outcome) and the progress bar."""

    out: Any
    progress: Progress
    task: Any
    input_name: str | None = None
    #: The input's size: what a send pass goes through.
    total: int | None = None
    counts: Counter[str] = attrs.field(factory=Counter)
    earlier: int = 0
    changed: int = 0
    #: With --reconcile: the pass under way ("send" or "reconcile") and how many sends so far.
    stage: str = "send"
    sends: int = 0
    label: str = ""

    def new_pass(self, kind: str, keys: int | None) -> None:
        """A pass of send-bulk --reconcile starts: the bar and its counts start again, over
        the input (a send) or the uncertain keys (a reconciliation)."""
        self.stage = kind
        self.sends += kind == "send"
        self.counts.clear()
        self.label = f"pass {self.sends}:" if kind == "send" else "reconciling:"
        self.progress.reset(
            self.task, total=self.total if kind == "send" else keys, description=self.label
        )

    def __call__(self, outcome: Outcome) -> None:
        self.counts[outcome.outcome] += 1
        if self.stage == "send" and self.sends <= 1:  # later passes list the same keys again
            self.earlier += outcome.earlier
            self.changed += outcome.changed
        # One line per outcome, on disk as soon as it is in the journal.
        self.out.write(json.dumps(outcome.to_json(), ensure_ascii=False) + "\n")
        self.out.flush()
        error = outcome.error or ""
        if outcome.outcome == "failed" and self.input_name and error.startswith(self.input_name):
            self.progress.console.print(f"[red]rejected[/red] {error}", highlight=False)
        elif outcome.changed:
            self.progress.console.print(
                f"[yellow]changed[/yellow] {outcome.key}: {error}", highlight=False
            )
        counts = " ".join(f"{k} {n}" for k, n in sorted(self.counts.items()))
        self.progress.update(
            self.task, advance=1, description=f"{self.label} {counts}" if self.label else counts
        )

    def waiting(self, seconds: float) -> None:
        self.progress.console.print(
            f"waiting {seconds:.0f}s for CommBox to list the latest sends (--settle-after)",
            highlight=False,
        )


#: Errors that stop a command before its work is done (exit code 4).
_STOPPING = (
    AuthenticationError,
    PermissionDeniedError,
    ConfigurationError,
    ClientStateError,
    JournalError,
)


def _sole(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error inside the groups anyio wraps it in, one per task group it crossed."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def _run_interruptible(
    ctx: click.Context,
    work: Callable[[AsyncCommBox, anyio.Event], Awaitable[Any]],
    make_client: Callable[[], AsyncCommBox],
    what: str,
) -> tuple[Any, CommBoxError | None, bool]:
    """Run ``work`` with a client and a stop event that the first Ctrl-C sets (the second
    cancels): its result (None if cancelled), the error that stopped it, and whether it was
    interrupted."""
    state: dict[str, Any] = {"interrupted": False}

    async def main() -> None:
        stop = anyio.Event()
        async with make_client() as cb, anyio.create_task_group() as tg:
            tg.start_soon(_until_interrupted, stop, tg.cancel_scope, what)
            # Caught here, inside the task group, so that they reach the summary as themselves
            # rather than wrapped in an ExceptionGroup (a traceback and exit 1).
            try:
                try:
                    state["result"] = await work(cb, stop)
                except BaseExceptionGroup as group:
                    raise _sole(group) from None
            except BulkStoppedError as exc:
                state["stopped"] = exc
                state["result"] = exc.report
            except _STOPPING as exc:
                state["stopped"] = exc
            except CommBoxError as exc:
                state["error"] = exc
            finally:
                state["interrupted"] = stop.is_set()
            tg.cancel_scope.cancel()

    stopped: CommBoxError | None = None
    try:
        anyio.run(main)
    except _STOPPING as exc:
        if ctx.obj and ctx.obj.get("debug"):
            raise
        stopped = exc
    finally:
        # The work is over: another Ctrl-C now just ends the command, as interrupted.
        signal.signal(signal.SIGINT, _exit_interrupted)
    if "error" in state:
        if ctx.obj and ctx.obj.get("debug"):
            raise state["error"]
        _print_error(state["error"])
        raise SystemExit(EXIT_FAILED)
    stopped = state.get("stopped", stopped)
    result = state.get("result")
    interrupted = state["interrupted"] or (result is None and stopped is None)
    return result, stopped, interrupted


def _finish(
    table: Table, counts: Counter[str], *, changed: int, stopped: Any, interrupted: bool
) -> None:
    console.print(table)
    if stopped is not None:
        _print_error(stopped, label="stopped")
    code = send_bulk_exit_code(
        counts, changed=changed, interrupted=interrupted, stopped=stopped is not None
    )
    if code == EXIT_INTERRUPTED:
        err_console.print("[yellow]interrupted:[/yellow] re-run the same command to resume")
    raise SystemExit(code)


@cli.command("send-bulk", epilog=_SEND_BULK_EXIT_CODES)
@click.option("--stream", "stream_id", required=True, help="Stream (channel) id to send into.")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSONL or CSV: key, channel, and the NewObject constructor's arguments.",
)
@click.option(
    "--journal",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite journal: re-run with the same one to resume.",
)
@click.option(
    "--outcomes",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSONL rewritten by each run, one line per outcome as it settles (flushed at once): "
    "key, outcome, id, error, failure, earlier, reconciled. A key's last line is its final "
    "state.",
)
@click.option("--concurrency", default=16, show_default=True, type=click.IntRange(1, 1000))
@click.option("--resend-uncertain", is_flag=True, help="Send again what may have been taken.")
@click.option(
    "--retry-failed", is_flag=True, help="Send again what CommBox rejected in an earlier run."
)
@click.option(
    "--reconcile",
    "reconcile_",
    is_flag=True,
    help="Before and after sending, ask CommBox what it took of the uncertain messages; send "
    "again, in the same run, what it never took.",
)
@click.option(
    "--settle-after",
    default=DEFAULT_SETTLE_AFTER,
    show_default=True,
    type=click.FloatRange(0),
    help="With --reconcile: seconds to give CommBox to list a new conversation.",
)
@click.option(
    "--stamp",
    is_flag=True,
    help="Write each message's key into its Content (commbox_async_key), for exact matching.",
)
@_client_options
@click.pass_context
def send_bulk(
    ctx: click.Context,
    stream_id: str,
    input_path: Path,
    journal: Path,
    outcomes: Path,
    concurrency: int,
    rate_limit: RateLimitSetting,
    resend_uncertain: bool,
    retry_failed: bool,
    reconcile_: bool,
    settle_after: float,
    stamp: bool,
    token: str | None,
    base_url: str | None,
) -> None:
    """Send every message of a file once, resumably, with a progress bar and a summary.

    Each record needs a unique key and a channel (sms, sms_many, email, whatsapp_template,
    chat); the other fields are that NewObject constructor's arguments (CSV: one column each,
    lists separated by ';'). The file is read whole first: a duplicate key, or a file that
    cannot be read as records (not UTF-8, a quote never closed, a column named twice, a
    record over 1 MiB...), stops the run before anything is sent; a malformed record is
    reported with its line number and recorded as failed. Keys settled
    by an earlier run with the same journal are listed with "earlier": true and not sent
    again (failures of the run itself, such as a refused connection, are).

    The first Ctrl-C starts nothing new and leaves what waits for the rate limit pending;
    requests on the wire finish. A second Ctrl-C cancels those too (uncertain: CommBox may
    have taken them).
    """
    from .bulk import read_messages, scan_keys

    # The whole file is read first: one that cannot be read as records (not UTF-8, a quote
    # never closed, a duplicate column...) is refused before anything is sent.
    try:
        total, duplicates = scan_keys(input_path)
    except InputFileError as exc:
        err_console.print(f"[red]error:[/red] {exc}; nothing sent", highlight=False)
        raise SystemExit(EXIT_USAGE) from None
    if duplicates:
        for key, lines in list(duplicates.items())[:20]:
            err_console.print(
                f"[red]duplicate key[/red] {key!r} on lines {', '.join(map(str, lines))}",
                highlight=False,
            )
        err_console.print(
            f"[red]error:[/red] {len(duplicates)} duplicate key(s) in {input_path}; nothing sent",
            highlight=False,
        )
        raise SystemExit(EXIT_USAGE)
    options: dict[str, Any] = {
        "concurrency": concurrency,
        "resend_uncertain": resend_uncertain,
        "retry_failed": retry_failed,
        "stamp": stamp,
        "keep_outcomes": False,
    }
    with outcomes.open("w", encoding="utf-8") as out, _progress(rate_limit) as progress:
        tally = _Tally(
            out, progress, progress.add_task("sending", total=total), input_path.name, total
        )

        async def work(cb: AsyncCommBox, stop: anyio.Event) -> Any:
            def messages() -> Any:
                return read_messages(input_path, stream_id=stream_id)

            if reconcile_:
                return await cb.bulk.send_reconciled(
                    messages,
                    journal=journal,
                    settle_after=settle_after,
                    stop=stop,
                    on_outcome=tally,
                    on_wait=tally.waiting,
                    on_pass=tally.new_pass,
                    **options,
                )
            return await cb.bulk.send(
                messages(), journal=journal, stop=stop, on_outcome=tally, **options
            )

        result, stopped, interrupted = _run_interruptible(
            ctx, work, lambda: _make_client(token, base_url, rate_limit=rate_limit), "messages"
        )
    table = Table(title="commbox send-bulk", show_header=False)
    counts = tally.counts
    if isinstance(result, RoundsReport):
        counts = Counter(result.final)
        for kind in ("sent", "failed", "uncertain", "pending"):
            table.add_row(f"{kind} (the journal, at the end)", str(counts.get(kind, 0)))
        table.add_row("uncertain found taken / not taken", f"{result.found} / {result.not_taken}")
        table.add_row("send passes", str(len(result.sends)))
    else:
        for kind in ("sent", "failed", "uncertain", "pending"):
            table.add_row(kind, str(counts.get(kind, 0)))
        table.add_row("of them settled by an earlier run", str(tally.earlier))
    if tally.changed:
        table.add_row("changed since an earlier run sent them", str(tally.changed))
    table.add_row("records in the input", str(total))
    if isinstance(result, BulkReport):
        table.add_row("recovered from an interrupted run", str(result.recovered_uncertain))
        table.add_row("throughput", f"{result.throughput:,.1f} msg/s")
    table.add_row("rate limit", str(rate_limit))
    table.add_row("journal / outcomes", f"{journal} / {outcomes}")
    _finish(table, counts, changed=tally.changed, stopped=stopped, interrupted=interrupted)


@cli.command("reconcile", epilog=_SEND_BULK_EXIT_CODES)
@click.option(
    "--journal",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The journal of an earlier send-bulk.",
)
@click.option(
    "--outcomes",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSONL: one line per uncertain key examined, with what was decided.",
)
@click.option(
    "--settle-after",
    default=DEFAULT_SETTLE_AFTER,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds to give CommBox to list a new conversation before 'not found' means 'not taken'.",
)
@click.option(
    "--clock-skew",
    default=DEFAULT_CLOCK_SKEW,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds this machine's clock may be off CommBox's.",
)
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 256))
@_client_options
@click.pass_context
def reconcile_cmd(
    ctx: click.Context,
    journal: Path,
    outcomes: Path | None,
    settle_after: float,
    clock_skew: float,
    concurrency: int,
    rate_limit: RateLimitSetting,
    token: str | None,
    base_url: str | None,
) -> None:
    """Settle the uncertain messages of a send-bulk journal by asking CommBox what it holds.

    A message found exactly once becomes sent; one not found (once --settle-after has passed)
    becomes failed as "not taken", which the next send-bulk with the same journal sends
    again; one with several candidates, or sent a way CommBox offers no lookup for
    (/sms/sendsms; WhatsApp templates without a stamp), stays uncertain with the reason.
    """
    from .bulk import Journal

    try:
        with Journal(journal) as book:
            # A run killed mid-request left keys "sending": reconciled as uncertain too.
            states = book.counts()
            examined = states.get("uncertain", 0) + states.get("sending", 0)
    except _STOPPING as exc:
        if ctx.obj and ctx.obj.get("debug"):
            raise
        _print_error(exc, label="stopped")
        raise SystemExit(EXIT_STOPPED) from None
    with (
        outcomes.open("w", encoding="utf-8") if outcomes else open(os.devnull, "w") as out,
        _progress(rate_limit) as progress,
    ):
        tally = _Tally(out, progress, progress.add_task("reconciling", total=examined))

        async def work(cb: AsyncCommBox, stop: anyio.Event) -> Any:
            with anyio.CancelScope() as scope:

                async def cancel_on_stop() -> None:
                    await stop.wait()
                    scope.cancel()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(cancel_on_stop)
                    report = await cb.bulk.reconcile(
                        journal,
                        settle_after=settle_after,
                        clock_skew=clock_skew,
                        concurrency=concurrency,
                        on_outcome=tally,
                        keep_outcomes=False,
                    )
                    tg.cancel_scope.cancel()
                    return report
            return None

        report, stopped, interrupted = _run_interruptible(
            ctx, work, lambda: _make_client(token, base_url, rate_limit=rate_limit), "lookups"
        )
    table = Table(title="commbox reconcile", show_header=False)
    table.add_row("uncertain before", str(examined))
    if report is not None:
        if report.recovered:
            table.add_row("of them recovered from an interrupted run", str(report.recovered))
        table.add_row("found taken (now sent)", str(report.found))
        table.add_row("not taken (sent again by the next send-bulk)", str(report.not_taken))
        for reason, n in sorted(report.still_uncertain.items()):
            table.add_row(f"still uncertain: {reason}", str(n))
        table.add_row("requests (per key)", f"{report.requests} ({report.requests_per_key:.2f})")
    table.add_row("rate limit", str(rate_limit))
    counts = Counter(uncertain=report.uncertain if report is not None else examined)
    _finish(table, counts, changed=0, stopped=stopped, interrupted=interrupted)


def _export_ref(text: str, where: str) -> tuple[int | str, int | str]:
    """A line of ``export --input``: ``stream_id,object_id`` or a JSON object with both."""
    if text.startswith("{"):
        try:
            item = _json.loads(text)
            return _export_id(item["stream_id"], where), _export_id(item["object_id"], where)
        except (ValueError, KeyError, TypeError) as exc:
            raise click.UsageError(
                f"{where}: expected a JSON object with stream_id and object_id "
                f"({type(exc).__name__}: {exc})"
            ) from None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise click.UsageError(f"{where}: expected stream_id,object_id")
    return _export_id(parts[0], where), _export_id(parts[1], where)


def _export_id(value: Any, where: str) -> int | str:
    """An id as given: a number (an int64) or a stream's text id."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()):
        return text
    if len(text) > 19 or int(text) >= 2**63:
        raise click.UsageError(f"{where}: {text[:30]}... is not an id (more than 64 bits)")
    return int(text)


@cli.command("export")
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Conversations: lines 'stream_id,object_id' or JSON {stream_id, object_id}.",
)
@click.option("--stream", "stream_id", default=None, help="Or a whole stream (with --start/--end).")
@click.option("--start", type=int, default=None, help="Unix seconds (with --stream).")
@click.option("--end", type=int, default=None, help="Unix seconds (with --stream).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option("--transcript", is_flag=True, help="Add each conversation's transcript.")
@_client_options
@click.pass_context
def export_cmd(
    ctx: click.Context,
    input_path: Path | None,
    stream_id: str | None,
    start: int | None,
    end: int | None,
    out_path: Path,
    concurrency: int,
    transcript: bool,
    rate_limit: RateLimitSetting,
    token: str | None,
    base_url: str | None,
) -> None:
    """Export whole conversations into a JSONL file, resuming where an earlier run stopped."""
    if (input_path is None) == (stream_id is None):
        raise click.UsageError("give --input, or --stream with --start and --end")
    if stream_id is not None and (start is None or end is None):
        raise click.UsageError("--stream needs --start and --end")
    counts: Counter[str] = Counter()
    summary: dict[str, Any] = {}

    def refs() -> Iterator[tuple[int | str, int | str]]:
        assert input_path is not None
        try:
            for number, line in read_lines(input_path):
                text = line.strip()
                if text:
                    yield _export_ref(text, f"{input_path}:{number}")
        except InputFileError as exc:
            raise click.UsageError(str(exc)) from None

    # The whole file is read once first: a line that is not a reference stops the command
    # before anything is exported, and the progress bar knows the total.
    total = sum(1 for _ in refs()) if input_path is not None else None

    async def main() -> None:
        stop = anyio.Event()
        with _progress(rate_limit) as progress:
            task = progress.add_task("exporting", total=total)

            def seen(item: Any) -> None:
                counts["failed" if item.error else "exported"] += 1
                progress.update(
                    task,
                    advance=1,
                    description=" ".join(f"{k} {n}" for k, n in sorted(counts.items())),
                )

            async with (
                _make_client(token, base_url, rate_limit=rate_limit) as cb,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(_until_interrupted, stop, tg.cancel_scope, "conversations")
                with anyio.CancelScope() as work:

                    async def stop_on_first_interrupt() -> None:
                        await stop.wait()
                        work.cancel()

                    tg.start_soon(stop_on_first_interrupt)
                    summary["report"] = await cb.export.jsonl(
                        out_path,
                        refs() if input_path is not None else None,
                        stream_id=stream_id,
                        start=start,
                        end=end,
                        concurrency=concurrency,
                        transcript=transcript,
                        on_export=seen,
                    )
                tg.cancel_scope.cancel()

    run(ctx, main)
    report = summary.get("report")
    table = Table(title="commbox export", show_header=False)
    if report is not None:
        table.add_row("exported", str(report.exported))
        table.add_row("already in the file", str(report.skipped))
        table.add_row("failed (see errors file)", str(report.failed))
        if report.unidentified:
            table.add_row("listed without an id (cannot be exported)", str(report.unidentified))
        if report.withheld:
            table.add_row("seconds CommBox may not have listed fully", str(len(report.withheld)))
        table.add_row("errors file", str(report.errors_path))
        table.add_row("elapsed", f"{report.elapsed:.1f} s")
    else:
        table.add_row("exported this run", str(counts.get("exported", 0)))
    table.add_row("rate limit", str(rate_limit))
    console.print(table)
    if report is None:
        err_console.print("[yellow]interrupted:[/yellow] re-run the same command to resume")
        raise SystemExit(130)
    missing = _export_missing(report)
    if missing:
        err_console.print(f"[red]incomplete:[/red] {missing}; re-run the same command to retry")
        raise SystemExit(EXIT_FAILED)


def _export_missing(report: Any) -> str:
    """What an export run did not write (a script must not read its exit as "all of it")."""
    parts = []
    if report.failed:
        parts.append(f"{report.failed} conversation(s) failed (see {report.errors_path})")
    if report.unidentified:
        parts.append(f"{report.unidentified} listed without an id")
    if report.withheld:
        parts.append(f"{len(report.withheld)} second(s) CommBox may not have listed fully")
    return ", ".join(parts)


@cli.command("get-object")
@click.argument("stream_id")
@click.argument("object_id")
@click.option("--children", is_flag=True, help="Include every message (includeChilds=true).")
@click.option("--activity-log", is_flag=True, help="Include the activity log.")
@_client_options
@click.pass_context
def get_object(
    ctx: click.Context,
    stream_id: str,
    object_id: str,
    children: bool,
    activity_log: bool,
    rate_limit: RateLimitSetting,
    token: str | None,
    base_url: str | None,
) -> None:
    """Print one conversation as JSON (GET /streams/{STREAM_ID}/objects/{OBJECT_ID})."""

    async def main() -> None:
        async with _make_client(token, base_url, rate_limit=rate_limit) as cb:
            obj = await cb.objects.get(
                stream_id, object_id, include_children=children, include_activity_log=activity_log
            )
        console.print_json(json.dumps(unstructure(obj)))

    run(ctx, main)


@cli.command("set-status")
@click.argument("object_id")
@click.argument("status")
@_client_options
@click.pass_context
def set_status(
    ctx: click.Context,
    object_id: str,
    status: str,
    rate_limit: RateLimitSetting,
    token: str | None,
    base_url: str | None,
) -> None:
    """Set a conversation's status: STATUS is a name such as Resolved, or its number
    (POST /objects/{OBJECT_ID}/status/{STATUS_ID})."""
    member = _enum_member(ObjectStatusType, status, what="status", hint="STATUS")

    async def main() -> None:
        async with _make_client(token, base_url, rate_limit=rate_limit) as cb:
            await cb.objects.set_status(object_id, member)
        console.print(f"object {object_id}: status set to {member.name} ({int(member)})")

    run(ctx, main)


@cli.command("parse-webhook")
@click.argument("file", type=click.File("rb"))
@click.option("--subscription", default=None, help='The trigger\'s subscription, e.g. "Object".')
@click.option("--name", default=None, help='The trigger\'s name, e.g. "OnNewChild".')
@click.option(
    "--content-type", default=None, help="application/xml or application/json (default: sniffed)."
)
def parse_webhook(
    file: Any, subscription: str | None, name: str | None, content_type: str | None
) -> None:
    """Print the typed event a webhook body (XML or JSON; - for stdin) parses into."""
    from .webhooks import WebhookParseError, parse_event

    try:
        event = parse_event(
            file.read(), content_type=content_type, subscription=subscription, name=name
        )
    except WebhookParseError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise SystemExit(1) from None
    console.print(event)


@cli.command("fake-server")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--token", default=None, help="The only token accepted (default: any).")
@click.option("--fault-rate", default=0.0, type=click.FloatRange(0, 1), show_default=True)
@click.option("--seed", default=None, type=int)
@click.option(
    "--rate-limit", default=None, type=float, help="Server-side limit in requests/s (429s)."
)
@click.option(
    "--index-delay",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds before a new conversation shows in stream search.",
)
def fake_server(
    host: str,
    port: int,
    token: str | None,
    fault_rate: float,
    seed: int | None,
    rate_limit: float | None,
    index_delay: float,
) -> None:
    """Run the fake CommBox as a real HTTP server (inspect it under /_fake/)."""
    from .testing import FakeCommBox, serve

    fake = FakeCommBox(
        token=token,
        fault_rate=fault_rate,
        seed=seed,
        rate_limit=rate_limit,
        index_delay=index_delay,
    )
    console.print(f"fake CommBox on http://{host}:{port} (state: /_fake/state), Ctrl-C to stop")
    serve(fake, host=host, port=port)


# -- the demo ----------------------------------------------------------------------------------


@cli.command()
@click.option("--messages", default=2000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--fault-rate", default=0.1, show_default=True, type=click.FloatRange(0, 1))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--concurrency", default=32, show_default=True, type=click.IntRange(1, 1000))
@click.pass_context
def demo(ctx: click.Context, messages: int, fault_rate: float, seed: int, concurrency: int) -> None:
    """Bulk-send SMS conversations to an embedded fake CommBox with injected faults, settle the
    uncertain ones by asking it (and send again what it never took), export them
    concurrently, and check that every message is in the fake exactly once."""
    from .bulk import Journal
    from .testing import FakeCommBox

    fake = FakeCommBox(fault_rate=fault_rate, seed=seed, slow_seconds=0.005)
    stream = "hNyRN_fLUy7rrOrN9jLpipA=="
    exported: list[Any] = []
    export_errors: Counter[str] = Counter()
    facts: dict[str, Any] = {}

    def to_send() -> Iterator[BulkMessage]:
        for i in range(messages):
            key = f"demo-{i:06d}"
            sms = NewObject.sms(
                user_stream_provider_id=f"97250{i:07d}", message=f"Hello from {key}"
            )
            yield BulkMessage(key=key, stream_id=stream, payload=sms)

    async def main() -> None:
        async with fake.client(max_retries=4, initial_backoff=0.005, max_backoff=0.05) as cb:
            with Journal() as book, _progress() as progress:
                task = progress.add_task("sending", total=messages)
                start = time.perf_counter()
                first = await cb.bulk.send(
                    to_send(),
                    journal=book,
                    concurrency=concurrency,
                    on_outcome=lambda o: progress.advance(task),
                    keep_outcomes=False,
                )
                facts["send"] = time.perf_counter() - start
                facts["first"] = first.counts
                facts["taken_before"] = _taken(fake, book.rows())
                task = progress.add_task("settling", total=None)
                start = time.perf_counter()
                # The fake lists a conversation at once: nothing to wait for (settle_after=0).
                rounds = await cb.bulk.send_reconciled(
                    to_send,
                    journal=book,
                    settle_after=0,
                    concurrency=concurrency,
                    keep_outcomes=False,
                    on_outcome=lambda o: progress.advance(task) if o.reconciled else None,
                )
                facts["settle"] = time.perf_counter() - start
                facts["rounds"] = rounds
                facts["rows"] = rows = book.rows()
                ids = [r["id"] for r in rows if r["outcome"] == "sent"]
                task = progress.add_task("exporting", total=len(ids))
                start = time.perf_counter()
                refs: list[Any] = [(stream, object_id) for object_id in ids]
                # A read is safe to repeat: what a pass could not export (its retries spent on
                # injected faults) goes into the next pass, as a resumed export would.
                for _ in range(DEMO_EXPORT_PASSES):
                    failed: list[Any] = []
                    export_errors.clear()
                    async with cb.export.conversations(refs, concurrency=concurrency) as exports:
                        async for item in exports:
                            if item.error is None:
                                exported.append(item.conversation)
                                progress.advance(task)
                            else:
                                export_errors[item.error.split(":", 1)[0]] += 1
                                failed.append(item.ref)
                    facts["export passes"] = facts.get("export passes", 0) + 1
                    if not failed:
                        break
                    refs = failed
                facts["export"] = time.perf_counter() - start
            facts["requests"] = cb.metrics.requests
            facts["retries"] = cb.metrics.total_retries

    run(ctx, main)
    _demo_summary(fake, facts, exported, export_errors, messages, fault_rate, seed)


#: How many times the demo's export goes over what it could not export yet.
DEMO_EXPORT_PASSES = 3


def _taken(fake: Any, rows: list[dict[str, Any]]) -> int:
    """How many of the journal's uncertain keys the fake really holds."""
    held = {o["message"].removeprefix("Hello from ") for o in fake.all_objects()}
    return sum(1 for r in rows if r["outcome"] == "uncertain" and r["key"] in held)


def _demo_summary(
    fake: Any,
    facts: dict[str, Any],
    exported: list[Any],
    export_errors: Counter[str],
    messages: int,
    fault_rate: float,
    seed: int,
) -> None:
    """Check the fake's state against the journal: every message once, nothing lost."""
    by_key: Counter[str] = Counter(
        o["message"].removeprefix("Hello from ") for o in fake.all_objects()
    )
    ids_by_key = {
        o["message"].removeprefix("Hello from "): o["objectId"] for o in fake.all_objects()
    }
    rows = {r["key"]: r for r in facts["rows"]}
    final = Counter(r["outcome"] for r in rows.values())
    duplicates = sum(n - 1 for n in by_key.values() if n > 1)
    lost = [k for k, r in rows.items() if r["outcome"] == "sent" and ids_by_key.get(k) != r["id"]]
    missing = [k for k in rows if k not in by_key and rows[k]["outcome"] != "uncertain"]
    rounds: RoundsReport = facts["rounds"]
    first: Counter[str] = facts["first"]
    table = Table(title="commbox demo", show_header=False)
    table_rows = [
        ("messages", messages),
        (
            "first pass: sent / uncertain / failed",
            "{} / {} / {}".format(first["sent"], first["uncertain"], first["failed"]),
        ),
        ("  of the uncertain, really taken by the fake", facts["taken_before"]),
        (
            "reconciliation: found taken / not taken (sent again)",
            f"{rounds.found} / {rounds.not_taken}",
        ),
        ("send passes / reconciliations", f"{len(rounds.sends)} / {len(rounds.reconciles)}"),
        (
            "final: sent / uncertain / failed",
            "{} / {} / {}".format(final["sent"], final["uncertain"], final["failed"]),
        ),
        ("every message in the fake exactly once", len(by_key) == messages and not duplicates),
        ("duplicates found in the fake", duplicates),
        ("sent but missing or with another id", len(lost)),
        ("not in the fake though not uncertain", len(missing)),
        ("exported with children", f"{len(exported)} of {final['sent']}"),
        ("export passes / errors left", f"{facts['export passes']} / {dict(export_errors) or 0}"),
        ("HTTP requests / retries", f"{int(facts['requests'])} / {int(facts['retries'])}"),
        ("send throughput (first pass)", f"{messages / facts['send']:,.0f} msg/s"),
        ("settling (reconcile and resend)", f"{facts['settle']:.2f} s"),
        ("export throughput", f"{len(exported) / max(facts['export'], 1e-9):,.0f} conv/s"),
        ("fault rate", f"{fault_rate:.0%} (seed {seed})"),
    ]
    for name, value in table_rows:
        table.add_row(name, str(value))
    console.print(table)
    if duplicates or lost or missing or export_errors:
        err_console.print("[red]demo found an inconsistency[/red]")
        raise SystemExit(1)


E = TypeVar("E", bound=OpenIntEnum)


def _enum_member(cls: type[E], text: str, *, what: str, hint: str) -> E:
    """A known member of ``cls`` by name (as CommBox's docs write it) or number; anything
    else is a usage error listing the valid names."""
    value = text.strip()
    member = cls._value2member_map_.get(int(value)) if value.isdecimal() else cls.from_name(value)
    if member is None:
        valid = ", ".join(f"{m.name.title().replace('_', '')} ({m.value})" for m in cls)
        raise click.BadParameter(f"unknown {what} {text!r}; one of: {valid}", param_hint=hint)
    return member  # type: ignore[return-value]


class _RateLimitColumn(ProgressColumn):
    """The rate limit in force, live (an adaptive one changes as it goes)."""

    def __init__(self, setting: RateLimitSetting) -> None:
        super().__init__()
        self._setting = setting

    def render(self, task: Task) -> Text:
        return Text(f"rate limit {self._setting.describe(burst=False)}", style="dim")


def _progress(rate_limit: RateLimitSetting | None = None) -> Progress:
    columns: list[ProgressColumn] = [
        TextColumn("{task.description:>10}"),
        BarColumn(bar_width=20 if rate_limit is not None else 40),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    ]
    if rate_limit is not None:
        columns.append(_RateLimitColumn(rate_limit))
    return Progress(*columns, console=console)


def main() -> None:
    """The ``commbox`` command. A Ctrl-C before a command has started listening for it (while
    it starts up) is exit 130 like any other, not click's "Aborted!" and exit 1."""
    try:
        code = cli.main(prog_name="commbox", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except (KeyboardInterrupt, click.exceptions.Abort):
        err_console.print("[yellow]interrupted:[/yellow] re-run the same command to resume")
        raise SystemExit(EXIT_INTERRUPTED) from None
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
