"""Hostile ``send-bulk`` input files: what cannot be read as records is refused, typed, naming
the file, the line and the problem, before anything is sent.

Before (found by the outsider review): invalid UTF-8, UTF-16 and binary files raised a raw
``UnicodeDecodeError``; a CSV cell over 128 KiB a raw ``_csv.Error``; a UTF-8 byte-order mark
made the first column ``"\\ufeffkey"``, so no record had a key; a quote never closed took every
row after it into one cell, sent as one message; a column named twice kept its last cell
without a word; a JSONL line of any length was read whole and sent, and one nested 100,000
deep was a rejection saying "maximum recursion depth exceeded".
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

from commbox_async import ConfigurationError, InputFileError
from commbox_async import cli as cli_module
from commbox_async.bulk import Journal, Rejected, read_messages, scan_keys
from commbox_async.bulk.files import MAX_RECORD_BYTES
from commbox_async.testing import FakeCommBox

from .test_cli import send_bulk_args, use_fake

HEADER = "key,channel,user_stream_provider_id,message\n"


def row(key: str, i: int, message: str | None = None) -> str:
    return f"{key},sms,97250{i:07d},{message or 'hello ' + key}\n"


def record(key: str, i: int, **extra: Any) -> str:
    fields = {"key": key, "channel": "sms", "user_stream_provider_id": f"97250{i:07d}"}
    return json.dumps({**fields, "message": f"hello {key}", **extra}) + "\n"


# name -> (file contents, the line named, what the message says)
BAD_FILES: dict[str, tuple[bytes, int, str]] = {
    "invalid UTF-8.csv": (
        (HEADER + row("a", 1) + row("b", 2)).encode() + b"c,sms,972500000003,caf\xe9\n",
        4,
        "not UTF-8: byte 0xe9 at column 23",
    ),
    "UTF-16.csv": ((HEADER + row("a", 1)).encode("utf-16"), 1, "the file is UTF-16"),
    "UTF-16 without a BOM.csv": ((HEADER + row("a", 1)).encode("utf-16-le"), 1, "NUL byte"),
    "binary.csv": (bytes(range(256)) * 4, 1, "NUL byte"),
    "surrogates as bytes.csv": (
        (HEADER + row("a", 1)).encode() + b"b,sms,972500000002,\xed\xa0\x80\n",
        3,
        "not UTF-8",
    ),
    "a cell over 128 KiB.csv": (
        (HEADER + row("a", 1) + row("b", 2, "x" * (200 * 1024))).encode(),
        3,
        "a cell longer than 131,072 characters",
    ),
    "a quote never closed.csv": (
        (HEADER + row("a", 1) + 'b,sms,972500000002,"oops\n' + row("c", 3) + row("d", 4)).encode(),
        3,
        "never closed",
    ),
    "text after a closing quote.csv": (
        (HEADER + 'a,sms,972500000001,"hi" there\n' + row("b", 2)).encode(),
        2,
        "text after a closing quote",
    ),
    "a duplicate column.csv": (
        b"key,channel,message,message,user_stream_provider_id\na,sms,one,two,972500000001\n",
        1,
        "column 'message' is named 2 times",
    ),
    "a record over 1 MiB.csv": (
        (HEADER + row("a", 1) + "b,sms,972500000002," + '"x\n",' * 300_000 + "\n").encode(),
        3,
        "record longer than 1,048,576 bytes",
    ),
    "invalid UTF-8.jsonl": (
        record("a", 1).encode() + b'{"key":"b","channel":"sms","message":"caf\xe9"}\n',
        2,
        "not UTF-8: byte 0xe9 at column 42",
    ),
    "UTF-16.jsonl": (record("a", 1).encode("utf-16"), 1, "the file is UTF-16"),
    "UTF-32.jsonl": (record("a", 1).encode("utf-32"), 1, "the file is UTF-32"),
    "binary.jsonl": (bytes(range(256)) * 4, 1, "NUL byte"),
    "a line over 1 MiB.jsonl": (
        (record("a", 1) + record("b", 2, message="m" * (2 * MAX_RECORD_BYTES))).encode(),
        2,
        "line longer than 1,048,576 bytes",
    ),
    "no line break at all.jsonl": (b" " * (3 * MAX_RECORD_BYTES), 1, "line longer"),
    "JSON 100,000 deep.jsonl": (
        (record("a", 1) + '{"key":"b","x":' + "[" * 100_000 + "]" * 100_000 + "}\n").encode(),
        2,
        "JSON nested deeper than 256 levels",
    ),
}


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    src = tmp_path / name.replace(" ", "_")
    src.write_bytes(data)
    return src


@pytest.mark.parametrize("name", BAD_FILES)
def test_a_file_that_cannot_be_read_as_records_is_a_typed_error(name: str, tmp_path: Path) -> None:
    data, line, problem = BAD_FILES[name]
    src = _write(tmp_path, name, data)
    with pytest.raises(InputFileError) as info:
        scan_keys(src)
    exc = info.value
    assert isinstance(exc, ConfigurationError)
    assert (exc.path, exc.line) == (str(src), line)
    assert problem in exc.problem
    assert str(exc).startswith(f"{src}:{line}: ")
    assert len(str(exc)) < 400 + len(str(src))  # never the hostile line itself
    with pytest.raises(InputFileError):
        list(read_messages(src, stream_id=532))


@pytest.mark.parametrize("name", BAD_FILES)
def test_send_bulk_refuses_the_file_before_sending_anything(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCommBox()
    use_fake(monkeypatch, fake)
    data, line, problem = BAD_FILES[name]
    src = _write(tmp_path, name, data)
    journal = tmp_path / "j.sqlite"
    result = CliRunner().invoke(cli_module.cli, send_bulk_args(src, journal, tmp_path / "o.jsonl"))
    assert result.exit_code == cli_module.EXIT_USAGE, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    text = "".join(result.output.split())  # rich wraps long lines, even inside a word
    assert f"{src.name}:{line}:" in text and "".join(problem.split()) in text
    assert "nothingsent" in text
    assert fake.requests == []
    assert not journal.exists()  # refused before the journal was even opened


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    src = tmp_path / "bom.csv"
    src.write_bytes(b"\xef\xbb\xbf" + (HEADER + row("a", 1)).encode())
    (message,) = read_messages(src, stream_id=532)
    assert not isinstance(message, Rejected), message
    assert message.key == "a"
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + record("b", 2).encode())
    (message,) = read_messages(jsonl, stream_id=532)
    assert not isinstance(message, Rejected), message
    assert message.key == "b"


def test_what_csv_allows_is_still_read(tmp_path: Path) -> None:
    src = tmp_path / "ok.csv"
    src.write_bytes(
        b"key,channel,user_stream_provider_id,message,\r\n"  # CRLF, an unnamed column
        b'a,sms,972500000001,"two\r\nlines, and a ""quote"""\r\n'
        b"\r\n"  # a blank line
        b'b,sms,972500000002,x"y\r\n'  # a quote inside an unquoted cell is text
        b"c,sms,972500000003\r\n"  # fewer cells than columns
        b"d,sms,972500000004,hi,extra,more\r\n"  # more cells: that record's rejection
    )
    got = list(read_messages(src, stream_id=532))
    texts = [m.payload.to_wire()["Message"] for m in got[:2]]  # type: ignore[union-attr]
    assert texts == ['two\r\nlines, and a "quote"', 'x"y']
    assert isinstance(got[2], Rejected) and "message" in got[2].error
    assert isinstance(got[3], Rejected) and "ok.csv:7: more cells than columns" in got[3].error
    assert scan_keys(src) == (4, {})


def test_a_record_starting_on_a_later_line_is_named_by_its_first_line(tmp_path: Path) -> None:
    src = tmp_path / "multi.csv"
    src.write_text(HEADER + 'a,sms,972500000001,"one\ntwo\nthree"\nb,sms,1,\n')
    got = list(read_messages(src, stream_id=532))
    assert isinstance(got[1], Rejected) and "multi.csv:5:" in got[1].error


def test_an_unreadable_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="cannot be read") as info:
        scan_keys(tmp_path / "missing.jsonl")
    assert info.value.line == 0


def test_a_file_read_while_sending_stops_at_the_problem_with_what_came_before_journaled(
    tmp_path: Path,
) -> None:
    # read_messages validates as it streams: a problem halfway (a file changed after
    # scan_keys read it, or a caller that did not scan) ends the send, typed, after the
    # messages before it, each sent once and in the journal; the rest was never sent.
    src = tmp_path / "mid.jsonl"
    good = [record(f"k{i}", i).encode() for i in range(50)]
    src.write_bytes(b"".join(good[:30]) + b'{"key":"bad","x":"caf\xe9"}\n' + b"".join(good[30:]))
    journal = tmp_path / "j.sqlite"
    fake = FakeCommBox()

    async def main() -> None:
        async with fake.client() as cb:
            with pytest.raises(InputFileError, match=r"mid.jsonl:31: not UTF-8"):
                await cb.bulk.send(read_messages(src, stream_id=532), journal=journal)

    anyio.run(main)
    # The stop is a condition of the run: what was on the wire finished (sent), what waited
    # went back to pending, what was never taken from the input is not in the journal; every
    # one of them is honest, and a run over the fixed file sends each message exactly once.
    taken = Counter(o["message"] for o in fake.all_objects())
    with Journal(journal) as book:
        rows = {r["key"]: r["outcome"] for r in book.rows()}
    assert set(rows.values()) <= {"sent", "pending"}
    assert {f"hello {k}" for k, v in rows.items() if v == "sent"} == set(taken)
    assert all(int(k[1:]) < 30 for k in rows)
    src.write_bytes(b"".join(good))

    async def again() -> None:
        async with fake.client() as cb:
            await cb.bulk.send(read_messages(src, stream_id=532), journal=journal)

    anyio.run(again)
    assert Counter(o["message"] for o in fake.all_objects()) == {
        f"hello k{i}": 1 for i in range(50)
    }
