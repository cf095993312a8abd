"""Bulk messages from a JSONL or CSV file (what ``commbox send-bulk`` reads).

A file is read as UTF-8 (a byte-order mark first is dropped), one line at a time, each record
(a JSONL line, or the lines of one CSV record) at most :data:`MAX_RECORD_BYTES`. What makes
the file unreadable as records raises :class:`~commbox_async.InputFileError` naming the file,
the line and the problem: bytes that are not UTF-8 (UTF-16, binary), a NUL byte, a record or a
CSV cell too long, a CSV quote never closed or text after a closing quote, a column named
twice, a JSON line nested deeper than 256. One bad record (not JSON, an unknown channel, a
missing key) is that record's :class:`Rejected`, and the file goes on.
"""

from __future__ import annotations

import csv
import enum
import functools
import inspect
import json
import types
import typing
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Union

from .._exceptions import ConfigurationError, InputFileError
from .._json import DEFAULT_MAX_DEPTH, nesting_depth
from ..models import NewObject, NewUser
from ._types import BulkMessage, Rejected

__all__ = [
    "CHANNELS",
    "MAX_RECORD_BYTES",
    "InputRecord",
    "read_lines",
    "read_messages",
    "scan_keys",
]

#: ``channel`` values of an input record, each the :class:`NewObject` constructor it calls.
CHANNELS = ("sms", "sms_many", "email", "whatsapp_template", "chat")

#: The longest record of an input file, in bytes (a JSONL line; the lines of one CSV record,
#: whose cells have the csv module's limit of 131,072 characters each as well).
MAX_RECORD_BYTES = 1024 * 1024

InputRecord = dict[str, Any]

# Byte-order marks of the encodings a spreadsheet may save as instead of UTF-8 (UTF-32LE's
# starts like UTF-16LE's, so it is looked for first).
_OTHER_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


class _Lines:
    """The lines of an open file as text, checked as they are read (UTF-8, no NUL, a record
    within :data:`MAX_RECORD_BYTES`); ``start_record()`` before each record. An iterator of
    lines, so ``csv.reader`` can read from it one line at a time."""

    def __init__(self, path: Path, fh: IO[bytes]) -> None:
        self.path = path
        self._fh = fh
        self.line = 0  # the last line read
        self.record_line = 1  # where the record being read starts
        self.raw = b""  # the last line read, as bytes
        self._record_bytes = 0

    def refuse(self, line: int, problem: str) -> InputFileError:
        return InputFileError(
            f"{self.path}:{line}: {problem}", path=str(self.path), line=line, problem=problem
        )

    def start_record(self) -> None:
        self.record_line = self.line + 1
        self._record_bytes = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        room = MAX_RECORD_BYTES - self._record_bytes
        try:
            raw = self._fh.readline(room + 1)
        except OSError as exc:
            raise self.refuse(self.line + 1, f"cannot be read: {exc.strerror or exc}") from None
        if not raw:
            raise StopIteration
        self.line += 1
        self._record_bytes += len(raw)
        if len(raw) > room:
            where = "line" if self.record_line == self.line else "record"
            raise self.refuse(
                self.record_line, f"{where} longer than {MAX_RECORD_BYTES:,} bytes, the limit"
            )
        if self.line == 1:
            for bom, encoding in _OTHER_BOMS:
                if raw.startswith(bom):
                    raise self.refuse(1, f"the file is {encoding}; save it as UTF-8")
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        nul = raw.find(0)
        if nul != -1:
            raise self.refuse(
                self.line,
                f"a NUL byte (byte {nul + 1} of the line): the file is binary, or not UTF-8 "
                "(UTF-16?); save it as UTF-8 text",
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            column = len(raw[: exc.start].decode("utf-8")) + 1
            raise self.refuse(
                self.line,
                f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {column}; save the file "
                "as UTF-8",
            ) from None
        self.raw = raw
        return text


def _open(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise InputFileError(
            f"{path}: cannot be read: {exc.strerror or exc}",
            path=str(path),
            line=0,
            problem=f"cannot be read: {exc.strerror or exc}",
        ) from None


def _records(path: Path) -> Iterator[tuple[int, InputRecord | str]]:
    """(line number, record or the reason it is malformed), one at a time; raises
    :class:`InputFileError` where the file stops being readable."""
    with _open(path) as fh:
        lines = _Lines(path, fh)
        if path.suffix.lower() == ".csv":
            yield from _csv_records(lines)
        else:
            yield from _jsonl_records(lines)


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 text input file (``commbox export --input``), checked
    as :func:`read_messages` checks its lines: :class:`~commbox_async.InputFileError` for a
    file that is not UTF-8, holds a NUL, or a line over :data:`MAX_RECORD_BYTES`."""
    path = Path(path)
    with _open(path) as fh:
        lines = _Lines(path, fh)
        for text in lines:
            lines.start_record()
            yield lines.line, text


def _csv_problem(exc: csv.Error) -> str:
    text = str(exc)
    if "unexpected end of data" in text:
        return "a quote opened in this record is never closed (the file ends inside it)"
    if "field larger than field limit" in text:
        return (
            f"a cell longer than {csv.field_size_limit():,} characters, the limit for a CSV "
            "cell (write the record as JSONL)"
        )
    if "expected after" in text:
        return f'text after a closing quote ({text}; a quote inside a cell is written "")'
    return f"not CSV ({text})"


def _csv_records(lines: _Lines) -> Iterator[tuple[int, InputRecord | str]]:
    # strict: a quote never closed, or text after a closing quote, is an error rather than
    # a cell that silently takes in the rows after it.
    reader = csv.reader(lines, strict=True)
    header: list[str] | None = None
    while True:
        lines.start_record()
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise lines.refuse(lines.record_line, _csv_problem(exc)) from None
        if not row:  # a blank line
            continue
        if header is None:
            header = row
            twice = [name for name, n in Counter(row).items() if n > 1 and name]
            if twice:
                raise lines.refuse(
                    lines.record_line,
                    f"column {twice[0]!r} is named {row.count(twice[0])} times in the header",
                )
            continue
        if len(row) > len(header):
            yield lines.record_line, "more cells than columns"
            continue
        yield lines.record_line, {k: v for k, v in zip(header, row) if k and v != ""}


def _jsonl_records(lines: _Lines) -> Iterator[tuple[int, InputRecord | str]]:
    while True:
        lines.start_record()
        try:
            text = next(lines)
        except StopIteration:
            return
        if not text.strip():
            continue
        raw = lines.raw
        if len(raw) > DEFAULT_MAX_DEPTH and nesting_depth(raw, DEFAULT_MAX_DEPTH) > (
            DEFAULT_MAX_DEPTH
        ):
            raise lines.refuse(
                lines.line, f"JSON nested deeper than {DEFAULT_MAX_DEPTH} levels, the limit"
            )
        try:
            value = json.loads(text)
        except ValueError as exc:  # JSONDecodeError, or a number past the int-digits limit
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            yield lines.line, f"not JSON ({reason})"
            continue
        yield lines.line, value if isinstance(value, dict) else "not a JSON object"


def scan_keys(path: str | Path) -> tuple[int, dict[str, list[int]]]:
    """Count the records of an input file and find keys used more than once (with the line
    numbers of each use), reading it once without keeping it in memory.

    It reads the whole file, so it raises :class:`~commbox_async.InputFileError` for a file
    that cannot be read as records before anything is sent: ``commbox send-bulk`` runs it
    first."""
    lines_by_key: dict[str, list[int]] = {}
    count = 0
    for line, record in _records(Path(path)):
        count += 1
        if isinstance(record, dict) and isinstance(record.get("key"), (str, int)):
            lines_by_key.setdefault(str(record["key"]), []).append(line)
    return count, {k: v for k, v in lines_by_key.items() if len(v) > 1}


@functools.cache
def _parameters(channel: str) -> Mapping[str, Any]:
    """The keyword parameters of a channel's constructor, with their resolved types."""
    factory = getattr(NewObject, channel)
    hints = typing.get_type_hints(factory)
    return {
        name: hints[name]
        for name, p in inspect.signature(factory).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _choices(hint: Any) -> tuple[Any, ...]:
    """The types a parameter accepts, ``None`` left out."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        return tuple(t for t in typing.get_args(hint) if t is not type(None))
    return (hint,)


def _is_sequence(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    return origin in (list, tuple) or origin is Sequence


_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})


def _from_text(text: str, hint: Any, name: str) -> Any:
    """A CSV cell (or a JSON string) as the type a parameter takes."""
    choices = _choices(hint)
    if any(_is_sequence(t) for t in choices):
        return [part.strip() for part in text.split(";") if part.strip()]
    if str in choices:
        return text
    value = text.strip()
    for t in choices:
        if t is bool:
            if value.lower() in _TRUE | _FALSE:
                return value.lower() in _TRUE
            raise ConfigurationError(f"{name} must be true or false, got {text!r}")
        if isinstance(t, type) and issubclass(t, enum.IntEnum):
            if value.removeprefix("-").isdecimal() and len(value) <= 18:
                return int(value)
            member = t.__members__.get(value.upper().replace(" ", "_"))
            if member is None:
                names = ", ".join(t.__members__)
                raise ConfigurationError(f"{name} must be a number or one of {names}: {text!r}")
            return member
        if t is int:
            if value.removeprefix("-").isdecimal() and len(value) <= 18:
                return int(value)
            raise ConfigurationError(f"{name} must be a whole number, got {text!r}")
    if NewUser in choices or any(typing.get_origin(t) is Mapping for t in choices):
        raise ConfigurationError(f"{name} takes an object (write the record as JSONL)")
    return text


_CONVERTERS: dict[Any, Callable[[Mapping[str, Any]], Any]] = {NewUser: lambda v: NewUser(**v)}


def _convert(channel: str, name: str, value: Any, where: str) -> Any:
    params = _parameters(channel)
    if name not in params:
        known = ", ".join(p for p in params if p != "extra")
        raise ConfigurationError(f"{where}: {channel} takes no {name!r} (it takes {known})")
    hint = params[name]
    if isinstance(value, str):
        return _from_text(value, hint, name)
    if isinstance(value, Mapping):
        for t in _choices(hint):
            if t in _CONVERTERS:
                try:
                    return _CONVERTERS[t](value)
                except TypeError as exc:
                    raise ConfigurationError(f"{name}: {exc}") from None
    return value


def read_messages(path: str | Path, *, stream_id: int | str) -> Iterator[BulkMessage | Rejected]:
    """The messages of a JSONL or CSV file (by suffix), lazily.

    Each record has ``key``, ``channel`` (one of :data:`CHANNELS`) and the keyword arguments
    of the matching ``NewObject`` constructor (CSV: one column each, list values separated by
    ``;``; each value converted to the type its parameter takes). A malformed record becomes
    a :class:`Rejected` naming its line, so the run records it as failed and goes on.

    A file that cannot be read as records raises :class:`~commbox_async.InputFileError`
    when the reading reaches the problem, after the messages before it: a bulk send reading
    from here has sent those, each with its journal record, and a run after the file is fixed
    resumes. To refuse such a file before anything is sent, read it with :func:`scan_keys`
    first, as ``commbox send-bulk`` does.
    """
    source = Path(path)
    for line, record in _records(source):
        where = f"{source.name}:{line}"
        key = record.get("key") if isinstance(record, dict) else None
        reject_key = str(key) if isinstance(key, (str, int)) and str(key) else f"line:{line}"
        if isinstance(record, str):
            yield Rejected(key=reject_key, error=f"{where}: {record}")
            continue
        try:
            yield _message(record, key, where, stream_id)
        except (ConfigurationError, ValueError) as exc:
            message = str(exc)
            yield Rejected(
                key=reject_key,
                error=message if message.startswith(where) else f"{where}: {message}",
            )


def _message(record: InputRecord, key: Any, where: str, stream_id: int | str) -> BulkMessage:
    if not isinstance(key, (str, int)) or not str(key):
        raise ConfigurationError(f"{where}: a record needs a key")
    channel = record.get("channel")
    if channel not in CHANNELS:
        raise ConfigurationError(
            f"{where}: channel must be one of {', '.join(CHANNELS)}, got {channel!r}"
        )
    kwargs = {
        name: _convert(channel, name, value, where)
        for name, value in record.items()
        if name not in ("key", "channel")
    }
    try:
        payload = getattr(NewObject, channel)(**kwargs)
    except TypeError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    return BulkMessage(key=str(key), stream_id=stream_id, payload=payload)
