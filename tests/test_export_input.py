"""``commbox export --input``: a references file that cannot be read is exit 2 with the file,
the line and the problem, before anything is exported (not a raw UnicodeDecodeError, nor an
ExceptionGroup from the middle of the export)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from commbox_async import cli as cli_module
from commbox_async.testing import FakeCommBox

GOOD = b"532,1\n"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (GOOD + b"532,\xff\xfe\n", "refs.txt:2: not UTF-8: byte 0xff"),
        ("532,1\n".encode("utf-16"), "refs.txt:1: the file is UTF-16; save it as UTF-8"),
        (GOOD + b"\x00\x01\x02binary\n", "refs.txt:2: a NUL byte"),
        (GOOD + b"532," + b"9" * 5000 + b"\n", "refs.txt:2: 9999999999"),
        (GOOD + b'{"stream_id": 532, "object_id": ' + b"9" * 5000 + b"}\n", "refs.txt:2"),
        (GOOD + b"[" * 100_000 + b"\n", "refs.txt:2: expected stream_id,object_id"),
        (GOOD + b"{" + b'"a":[' * 50_000 + b"\n", "refs.txt:2: expected a JSON object"),
        (GOOD + b"532," + b"1" * (2 * 1024 * 1024) + b"\n", "refs.txt:2: line longer than"),
        (GOOD + b"just one\n", "refs.txt:2: expected stream_id,object_id"),
    ],
    ids=[
        "bad-utf8",
        "utf16",
        "binary",
        "huge-id",
        "huge-json-id",
        "brackets",
        "deep-json",
        "long",
        "not-a-ref",
    ],
)
def test_a_refs_file_that_cannot_be_read_is_exit_2_before_any_export(
    content: bytes, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCommBox()
    fake.add_conversation(532, children=1)
    monkeypatch.setattr(cli_module, "_make_client", lambda *a, **kw: fake.client())
    src = tmp_path / "refs.txt"
    src.write_bytes(content)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(cli_module.cli, ["export", "--input", str(src), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
    assert fake.requests == []  # nothing exported: the file is read whole first
    assert not out.exists() or out.read_text() == ""
