"""The ``commbox`` command line (needs the ``cli`` extra: click and rich)."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

try:
    import click
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table
except ImportError:  # pragma: no cover - exercised only without the extra
    sys.stderr.write("the commbox command needs the cli extra: pip install 'commbox-async[cli]'\n")
    raise SystemExit(2) from None

import anyio
import attrs

from ._client import AsyncCommBox
from ._exceptions import CommBoxError
from .bulk import BulkMessage, Outcome
from .models import NewObject, ObjectStatusType, unstructure

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


@click.group()
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """commbox-async: work with the CommBox API from the shell."""
    ctx.obj = {"debug": debug}


def run(ctx: click.Context, fn: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; print errors as one line (a traceback only with --debug)."""
    try:
        return anyio.run(fn)
    except CommBoxError as exc:
        if ctx.obj and ctx.obj.get("debug"):
            raise
        err_console.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", highlight=False)
        raise SystemExit(1) from None


def _client_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--token", envvar="COMMBOX_TOKEN", help="API token (default $COMMBOX_TOKEN).")(
        f
    )
    return click.option(
        "--base-url", envvar="COMMBOX_BASE_URL", help="API base URL (default $COMMBOX_BASE_URL)."
    )(f)


def _make_client(token: str | None, base_url: str | None) -> AsyncCommBox:
    return AsyncCommBox(token=token, base_url=base_url)


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
    token: str | None,
    base_url: str | None,
) -> None:
    """Print one conversation as JSON (GET /streams/{STREAM_ID}/objects/{OBJECT_ID})."""

    async def main() -> None:
        async with _make_client(token, base_url) as cb:
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
    ctx: click.Context, object_id: str, status: str, token: str | None, base_url: str | None
) -> None:
    """Set a conversation's status (a number, or a name such as Resolved)."""
    member = (
        ObjectStatusType.from_name(status)
        if not status.isdigit()
        else ObjectStatusType(int(status))
    )
    if member is None:
        raise click.BadParameter(f"unknown status {status!r}", param_hint="STATUS")

    async def main() -> None:
        async with _make_client(token, base_url) as cb:
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
def fake_server(
    host: str,
    port: int,
    token: str | None,
    fault_rate: float,
    seed: int | None,
    rate_limit: float | None,
) -> None:
    """Run the fake CommBox as a real HTTP server (inspect it under /_fake/)."""
    from .testing import FakeCommBox, serve

    fake = FakeCommBox(token=token, fault_rate=fault_rate, seed=seed, rate_limit=rate_limit)
    console.print(f"fake CommBox on http://{host}:{port} (state: /_fake/state), Ctrl-C to stop")
    serve(fake, host=host, port=port)


# -- the demo ----------------------------------------------------------------------------------


@attrs.define
class _Outcomes:
    sent: dict[str, int] = attrs.field(factory=dict)
    failed: dict[str, str] = attrs.field(factory=dict)
    uncertain: dict[str, str] = attrs.field(factory=dict)


@cli.command()
@click.option("--messages", default=2000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--fault-rate", default=0.1, show_default=True, type=click.FloatRange(0, 1))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--concurrency", default=32, show_default=True, type=click.IntRange(1, 1000))
@click.pass_context
def demo(ctx: click.Context, messages: int, fault_rate: float, seed: int, concurrency: int) -> None:
    """Bulk-send SMS conversations to an embedded fake CommBox with injected faults, export them
    concurrently, and check that nothing was lost or sent twice."""
    from .testing import FakeCommBox

    fake = FakeCommBox(fault_rate=fault_rate, seed=seed, slow_seconds=0.005)
    stream = "hNyRN_fLUy7rrOrN9jLpipA=="
    outcomes = _Outcomes()
    exported: list[Any] = []
    export_errors: Counter[str] = Counter()
    timings: dict[str, float] = {}

    async def main() -> None:
        async with fake.client(max_retries=4, initial_backoff=0.005, max_backoff=0.05) as cb:
            limiter = anyio.CapacityLimiter(concurrency)
            with _progress() as progress:
                task = progress.add_task("sending", total=messages)

                def settled(outcome: Outcome) -> None:
                    if outcome.outcome == "sent":
                        assert outcome.id is not None
                        outcomes.sent[outcome.key] = outcome.id
                    elif outcome.outcome == "uncertain":
                        outcomes.uncertain[outcome.key] = outcome.error or ""
                    else:
                        outcomes.failed[outcome.key] = outcome.error or ""
                    progress.advance(task)

                def to_send() -> Iterator[BulkMessage]:
                    for i in range(messages):
                        key = f"demo-{i:06d}"
                        sms = NewObject.sms(
                            user_stream_provider_id=f"97250{i:07d}", message=f"Hello from {key}"
                        )
                        yield BulkMessage(key=key, stream_id=stream, payload=sms)

                start = time.perf_counter()
                await cb.bulk.send(
                    to_send(), concurrency=concurrency, on_outcome=settled, keep_outcomes=False
                )
                timings["send"] = time.perf_counter() - start

                ids = list(outcomes.sent.values())
                task = progress.add_task("exporting", total=len(ids))

                async def export(object_id: int) -> None:
                    async with limiter:
                        try:
                            exported.append(
                                await cb.objects.get(
                                    stream,
                                    object_id,
                                    include_children=True,
                                    include_activity_log=True,
                                )
                            )
                        except CommBoxError as exc:
                            export_errors[type(exc).__name__] += 1
                    progress.advance(task)

                start = time.perf_counter()
                async with anyio.create_task_group() as tg:
                    for object_id in ids:
                        tg.start_soon(export, object_id)
                timings["export"] = time.perf_counter() - start
            timings["requests"] = cb.metrics.requests
            timings["retries"] = cb.metrics.total_retries

    run(ctx, main)

    # Check the fake's state against the outcomes: nothing lost, nothing sent twice.
    by_key: Counter[str] = Counter(
        o["message"].removeprefix("Hello from ") for o in fake.all_objects()
    )
    duplicates = sum(n - 1 for n in by_key.values() if n > 1)
    ids_by_key = {
        o["message"].removeprefix("Hello from "): o["objectId"] for o in fake.all_objects()
    }
    lost = [k for k, v in outcomes.sent.items() if ids_by_key.get(k) != v]
    phantom = [k for k in by_key if k not in outcomes.sent and k not in outcomes.uncertain]
    table = Table(title="commbox demo", show_header=False)
    rows = [
        ("messages", messages),
        ("sent", len(outcomes.sent)),
        ("failed (CommBox certainly did not take them)", len(outcomes.failed)),
        ("uncertain (may have been taken; not resent)", len(outcomes.uncertain)),
        ("in the fake, uncertain but taken", sum(1 for k in outcomes.uncertain if k in by_key)),
        ("duplicates found in the fake", duplicates),
        ("sent but missing or with another id", len(lost)),
        ("in the fake but neither sent nor uncertain", len(phantom)),
        ("exported with children", f"{len(exported)} of {len(outcomes.sent)}"),
        ("export errors", dict(export_errors) or 0),
        ("HTTP requests / retries", f"{int(timings['requests'])} / {int(timings['retries'])}"),
        ("send throughput", f"{messages / timings['send']:,.0f} msg/s"),
        ("export throughput", f"{len(exported) / max(timings['export'], 1e-9):,.0f} conv/s"),
        ("fault rate", f"{fault_rate:.0%} (seed {seed})"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    if duplicates or lost or phantom or export_errors:
        err_console.print("[red]demo found an inconsistency[/red]")
        raise SystemExit(1)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def main() -> None:
    cli(prog_name="commbox")


if __name__ == "__main__":
    main()
