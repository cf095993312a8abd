"""``commbox send-bulk`` and ``commbox export`` against the fake (in-process and over a socket)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from commbox_async import cli as cli_module
from commbox_async.bulk import Journal, read_messages
from commbox_async.testing import FakeCommBox

from .conftest import serve_in_thread

STREAM = "532"


def use_fake(monkeypatch: pytest.MonkeyPatch, fake: FakeCommBox) -> None:
    monkeypatch.setattr(cli_module, "_make_client", lambda *a, **kw: fake.client())


def write_jsonl(path: Path, records: list[Any]) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))


def send_bulk_args(src: Path, journal: Path, outcomes: Path) -> list[str]:
    return [
        "send-bulk",
        "--stream",
        STREAM,
        "--input",
        str(src),
        "--journal",
        str(journal),
        "--outcomes",
        str(outcomes),
    ]


def sms(key: str, i: int) -> dict[str, Any]:
    return {
        "key": key,
        "channel": "sms",
        "user_stream_provider_id": f"97250{i:07d}",
        "message": f"hello {key}",
    }


def test_send_bulk_records_malformed_lines_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCommBox()
    use_fake(monkeypatch, fake)
    src = tmp_path / "in.jsonl"
    write_jsonl(
        src,
        [
            sms("a", 1),
            "{not json",
            {"key": "b", "channel": "fax", "message": "x"},
            {"key": "c", "channel": "sms", "message": "no number"},
            sms("d", 4),
            {
                "key": "e",
                "channel": "sms_many",
                "to": ["972500000001", "972500000002"],
                "user_stream_provider_id": "972500000000",
                "message": "to many",
            },
        ],
    )
    args = send_bulk_args(src, tmp_path / "j.sqlite", tmp_path / "out.jsonl")
    result = CliRunner().invoke(cli_module.cli, args)
    assert result.exit_code == cli_module.EXIT_FAILED, result.output  # 3 records failed
    assert "in.jsonl:2: not JSON" in result.output
    assert "in.jsonl:3: channel must be one of" in result.output
    assert "in.jsonl:4:" in result.output and "user_stream_provider_id" in result.output
    outcomes = {o["key"]: o for o in map(json.loads, (tmp_path / "out.jsonl").open())}
    assert {k: o["outcome"] for k, o in outcomes.items()} == {
        "a": "sent",
        "line:2": "failed",
        "b": "failed",
        "c": "failed",
        "d": "sent",
        "e": "sent",
    }
    assert sorted(o["message"] for o in fake.all_objects()) == ["hello a", "hello d", "to many"]
    journal = Journal(tmp_path / "j.sqlite")
    assert journal.counts() == {"sent": 3, "failed": 3}
    journal.close()

    before = len(fake.requests)
    again = CliRunner().invoke(cli_module.cli, args)
    assert again.exit_code == cli_module.EXIT_FAILED, again.output  # still malformed
    assert len(fake.requests) == before  # everything settled; nothing sent twice
    rows = {o["key"]: o for o in map(json.loads, (tmp_path / "out.jsonl").open())}
    assert len(rows) == 6  # the resumed run lists every key with its final state
    assert all(rows[k].get("earlier") for k in ("a", "d", "e"))
    assert {k: o["outcome"] for k, o in rows.items()} == {
        k: o["outcome"] for k, o in outcomes.items()
    }


def test_send_bulk_rejects_duplicate_keys_before_sending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCommBox()
    use_fake(monkeypatch, fake)
    src = tmp_path / "dup.jsonl"
    write_jsonl(src, [sms("a", 1), sms("b", 2), sms("a", 3)])
    result = CliRunner().invoke(
        cli_module.cli, send_bulk_args(src, tmp_path / "j.sqlite", tmp_path / "o.jsonl")
    )
    assert result.exit_code == 2
    assert "duplicate key 'a' on lines 1, 3" in result.output
    assert fake.requests == []


def test_csv_input_with_list_cells(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        "key,channel,to,subject,message,user_stream_provider_id,manager_id\n"
        "m1,email,a@x.io;b@x.io,Hi,Body,a@x.io,7\n"
        "m2,sms_many,972500000001;972500000002,,Text,972500000000,\n"
        "m3,email,not-an-address,Hi,Body,a@x.io,\n"
    )
    got = list(read_messages(src, stream_id=532))
    first = got[0].payload.to_wire()  # type: ignore[union-attr]
    assert [t["address"] for t in first["Content"]["to"]] == ["a@x.io", "b@x.io"]
    assert first["ManagerId"] == 7
    assert got[1].payload.to_wire()["Content"]["to"] == ["972500000001", "972500000002"]  # type: ignore[union-attr]
    assert got[2].key == "m3" and "in.csv:4" in got[2].error  # type: ignore[union-attr]


def test_export_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCommBox()
    ids = [fake.add_conversation(532, children=2) for _ in range(12)]
    use_fake(monkeypatch, fake)
    src = tmp_path / "refs.txt"
    src.write_text("".join(f"532,{i}\n" for i in ids) + '{"stream_id": 532, "object_id": 1}\n')
    out = tmp_path / "conv.jsonl"
    args = ["export", "--input", str(src), "--out", str(out), "--transcript"]
    result = CliRunner().invoke(cli_module.cli, args)
    # Object 1 does not exist: the run is incomplete, and says so in its exit code.
    assert result.exit_code == cli_module.EXIT_FAILED, result.output
    assert "incomplete: 1 conversation(s) failed" in " ".join(result.output.split())
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(x["object_id"] for x in lines) == sorted(ids)
    assert all("transcript" in x for x in lines)
    assert "failed (see errors file)" in result.output
    src.write_text("".join(f"532,{i}\n" for i in ids))  # without it: complete, exit 0
    again = CliRunner().invoke(cli_module.cli, args)
    assert again.exit_code == 0, again.output
    assert "incomplete" not in again.output


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_cleanly_and_a_rerun_finishes(tmp_path: Path) -> None:
    fake = FakeCommBox(fault_rate=1.0, faults=["slow"], slow_seconds=0.02)
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [sms(f"k{i:04d}", i) for i in range(400)])
    journal, outcomes = tmp_path / "j.sqlite", tmp_path / "out.jsonl"
    with serve_in_thread(fake) as url:
        cmd = [
            sys.executable,
            "-m",
            "commbox_async.cli",
            *send_bulk_args(src, journal, outcomes),
            "--concurrency",
            "4",
            "--rate-limit",
            "2000",
            "--base-url",
            url,
            "--token",
            "t",
        ]
        env = {**os.environ, "COLUMNS": "120"}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(fake.all_objects()) < 20:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, (out + err).decode()
        assert b"stopping" in err
        book = Journal(journal)
        counts = book.counts()
        book.close()
        assert "sending" not in counts  # in-flight ones finished before the exit
        taken_first = len(fake.all_objects())
        assert 0 < taken_first < 400
        assert counts.get("sent", 0) == taken_first

        fake.configure(fault_rate=0.0)
        rerun = subprocess.run(cmd, capture_output=True, timeout=60, env=env)
        assert rerun.returncode == 0, (rerun.stdout + rerun.stderr).decode()
    in_fake = Counter(o["message"] for o in fake.all_objects())
    assert len(in_fake) == 400 and set(in_fake.values()) == {1}
    lines = [json.loads(x) for x in outcomes.read_text().splitlines()]
    final = {x["key"]: x["outcome"] for x in lines}
    assert set(final.values()) == {"sent"} and len(final) == 400
    assert sum(1 for x in lines if x.get("earlier")) == taken_first


# -- send-bulk's exit codes --------------------------------------------------------------------


def test_send_bulk_exit_code_table() -> None:
    code = cli_module.send_bulk_exit_code
    assert code(Counter(sent=3), changed=0, interrupted=False, stopped=False) == 0
    assert code(Counter(sent=3, failed=1), changed=0, interrupted=False, stopped=False) == 1
    assert code(Counter(sent=3), changed=1, interrupted=False, stopped=False) == 1
    assert code(Counter(sent=3, pending=1), changed=0, interrupted=False, stopped=False) == 1
    assert code(Counter(failed=1, uncertain=1), changed=0, interrupted=False, stopped=False) == 3
    assert code(Counter(uncertain=1), changed=0, interrupted=False, stopped=True) == 4
    assert code(Counter(uncertain=1), changed=0, interrupted=True, stopped=True) == 130
    help_text = CliRunner().invoke(cli_module.cli, ["send-bulk", "--help"]).output
    for number in ("130", "4", "3", "1", "2", "0"):
        assert f"  {number} " in help_text


def test_send_bulk_exits_3_when_some_are_uncertain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCommBox()
    fake.fail_next("lost_after")
    use_fake(monkeypatch, fake)
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [sms("a", 1), sms("b", 2)])
    result = CliRunner().invoke(
        cli_module.cli, send_bulk_args(src, tmp_path / "j.sqlite", tmp_path / "o.jsonl")
    )
    assert result.exit_code == cli_module.EXIT_UNCERTAIN, result.output
    rows = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert sorted(r["outcome"] for r in rows) == ["sent", "uncertain"]
    assert next(r for r in rows if r["outcome"] == "uncertain")["processed"] == "maybe"


def test_send_bulk_stops_at_a_401_and_sends_everything_once_the_token_is_fixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCommBox(token="right")
    monkeypatch.setattr(
        cli_module,
        "_make_client",
        lambda token, base_url, **kw: fake.client(token=token or "unset"),
    )
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [sms(f"k{i:03d}", i) for i in range(100)])
    args = send_bulk_args(src, tmp_path / "j.sqlite", tmp_path / "o.jsonl")
    result = CliRunner().invoke(cli_module.cli, [*args, "--token", "wrong"])
    assert result.exit_code == cli_module.EXIT_STOPPED, result.output
    assert "AuthenticationError" in result.output
    assert len(fake.requests) <= 16  # stopped at once: one request per worker at most
    assert fake.all_objects() == []
    fixed = CliRunner().invoke(cli_module.cli, [*args, "--token", "right"])
    assert fixed.exit_code == cli_module.EXIT_OK, fixed.output
    assert sorted(o["message"] for o in fake.all_objects()) == sorted(
        f"hello k{i:03d}" for i in range(100)
    )


def test_send_bulk_sends_a_record_once_it_is_fixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCommBox()
    use_fake(monkeypatch, fake)
    src = tmp_path / "in.jsonl"
    broken = {"key": "b", "channel": "sms", "message": "no number yet"}
    write_jsonl(src, [sms("a", 1), broken])
    args = send_bulk_args(src, tmp_path / "j.sqlite", tmp_path / "o.jsonl")
    assert CliRunner().invoke(cli_module.cli, args).exit_code == cli_module.EXIT_FAILED
    write_jsonl(src, [sms("a", 1), sms("b", 2)])
    fixed = CliRunner().invoke(cli_module.cli, args)
    assert fixed.exit_code == cli_module.EXIT_OK, fixed.output
    assert sorted(o["message"] for o in fake.all_objects()) == ["hello a", "hello b"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_the_outcomes_file_of_a_killed_run_holds_what_was_settled(tmp_path: Path) -> None:
    fake = FakeCommBox(fault_rate=1.0, faults=["slow"], slow_seconds=0.01)
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [sms(f"k{i:04d}", i) for i in range(2000)])
    journal, outcomes = tmp_path / "j.sqlite", tmp_path / "out.jsonl"
    with serve_in_thread(fake) as url:
        cmd = [
            sys.executable,
            "-m",
            "commbox_async.cli",
            *send_bulk_args(src, journal, outcomes),
            "--concurrency",
            "8",
            "--rate-limit",
            "5000",
            "--base-url",
            url,
            "--token",
            "t",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(fake.all_objects()) < 100:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    rows = [json.loads(x) for x in outcomes.read_text().splitlines()]
    with Journal(journal) as book:
        settled = {r["key"]: r["outcome"] for r in book.rows() if r["outcome"] != "sending"}
    assert len(rows) >= 100 - 8
    # Every row written is true, and at most the last commit's rows (one per worker) are lost.
    assert all(settled[r["key"]] == r["outcome"] for r in rows)
    assert len(settled) - len(rows) <= 8


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_double_ctrl_c_leaves_what_waits_in_the_throttle_pending(tmp_path: Path) -> None:
    """Most workers wait for the rate limit when Ctrl-C comes twice: they never sent a byte,
    so they are pending and the next run sends them; none is stranded as uncertain."""
    fake = FakeCommBox()
    src = tmp_path / "in.jsonl"
    n = 60
    write_jsonl(src, [sms(f"k{i:04d}", i) for i in range(n)])
    journal, outcomes = tmp_path / "j.sqlite", tmp_path / "out.jsonl"
    with serve_in_thread(fake) as url:
        cmd = [
            sys.executable,
            "-m",
            "commbox_async.cli",
            *send_bulk_args(src, journal, outcomes),
            "--concurrency",
            "16",
            "--rate-limit",
            "4",
            "--base-url",
            url,
            "--token",
            "t",
        ]
        env = {**os.environ, "COLUMNS": "120"}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(fake.all_objects()) < 6:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        # 130; or, when the second Ctrl-C lands while the interpreter is exiting, the signal
        # itself ends the process, which a shell reports as 130 too.
        assert proc.returncode in (130, -signal.SIGINT), (out + err).decode()
        assert b"interrupted" in err
        with Journal(journal) as book:
            counts = book.counts()
        rows = [json.loads(x) for x in outcomes.read_text().splitlines()]
        taken_first = Counter(o["message"] for o in fake.all_objects())
        assert counts.get("pending", 0) >= 8  # the workers that waited for the rate limit
        assert counts.get("sending", 0) == 0
        assert counts.get("uncertain", 0) <= 1  # only a request on the wire can be
        assert len(rows) == sum(counts.values())  # every key taken is in the outcomes file
        rerun = subprocess.run(
            [*cmd[:-6], "--rate-limit", "500", *cmd[-4:]], capture_output=True, timeout=60, env=env
        )
        assert rerun.returncode in (0, 3), (rerun.stdout + rerun.stderr).decode()
    in_fake = Counter(o["message"] for o in fake.all_objects())
    assert set(in_fake.values()) == {1}  # nothing sent twice
    assert len(in_fake) >= n - counts.get("uncertain", 0)  # and nothing stranded
    assert sum(taken_first.values()) < n


@pytest.mark.parametrize("command", ["send-bulk", "reconcile"])
def test_an_unusable_journal_is_one_line_and_exit_4(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a SQLite file: 'stopped: JournalError: ...' on one line, exit 4, nothing sent; not
    an ExceptionGroup traceback and exit 1."""
    fake = FakeCommBox()
    use_fake(monkeypatch, fake)
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [sms("a", 1)])
    journal = tmp_path / "notes.txt"
    journal.write_text("hello\n" * 100)
    args = (
        send_bulk_args(src, journal, tmp_path / "o.jsonl")
        if command == "send-bulk"
        else ["reconcile", "--journal", str(journal)]
    )
    result = CliRunner().invoke(cli_module.cli, args)
    assert result.exit_code == cli_module.EXIT_STOPPED, result.output
    assert "stopped: JournalError:" in result.output
    assert "Traceback" not in result.output and "ExceptionGroup" not in result.output
    assert fake.all_objects() == []


def test_a_library_error_inside_the_work_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error the run cannot turn into an outcome (here: reconcile's lookups refused by the
    server as a bad request) is one line, exit 1, not an ExceptionGroup traceback."""
    from commbox_async import BadRequestError
    from commbox_async.bulk import Bulk

    async def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise BadRequestError(
            "refused",
            http_status=400,
            envelope_status=None,
            description=None,
            method="GET",
            path="/streams/532/objects",
        )

    monkeypatch.setattr(Bulk, "reconcile", refuse)
    use_fake(monkeypatch, FakeCommBox())
    Journal(tmp_path / "j").close()
    result = CliRunner().invoke(cli_module.cli, ["reconcile", "--journal", str(tmp_path / "j")])
    assert result.exit_code == cli_module.EXIT_FAILED, result.output
    assert "error: BadRequestError: refused" in result.output
    assert "Traceback" not in result.output


def test_reconcile_counts_and_settles_what_a_killed_sender_left_sending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from commbox_async import NewObject
    from commbox_async.bulk import BulkMessage, Sending
    from commbox_async.bulk._lookup import lookup_for

    fake = FakeCommBox()
    use_fake(monkeypatch, fake)
    fake.add_conversation(532, message="Hello", user_stream_provider_id="972500000001")
    message = BulkMessage(
        key="a",
        stream_id=532,
        payload=NewObject.sms(user_stream_provider_id="972500000001", message="Hello"),
    )
    with Journal(tmp_path / "j") as book:
        lookup = lookup_for(message, stamp=False).to_json()
        book.write(sending=[Sending("a", message.digest(), lookup)], run=1)
    args = ["reconcile", "--journal", str(tmp_path / "j"), "--settle-after", "0"]
    result = CliRunner().invoke(cli_module.cli, args)
    assert result.exit_code == 0, result.output
    assert "uncertain before" in result.output and "recovered from an interrupted" in result.output
    with Journal(tmp_path / "j") as book:
        entry = book.get("a")
    assert entry is not None and entry.state == "sent"


def test_send_bulk_reconcile_counts_each_pass_against_what_it_goes_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bar starts again for each pass (it counted every pass's rows against the input:
    "946/300")."""
    import re

    fake = FakeCommBox()
    fake.fail_next("lost_after")
    use_fake(monkeypatch, fake)
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [sms(f"k{i}", i) for i in range(4)])
    args = [*send_bulk_args(src, tmp_path / "j.sqlite", tmp_path / "o.jsonl"), "--reconcile"]
    result = CliRunner().invoke(cli_module.cli, [*args, "--settle-after", "0.05"])
    assert result.exit_code == cli_module.EXIT_OK, result.output
    shown = [(int(a), int(b)) for a, b in re.findall(r"\b(\d+)/(\d+)\b", result.output)]
    assert shown and all(done <= total for done, total in shown), result.output
