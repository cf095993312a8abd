"""Bulk messages from a JSONL or CSV file (what ``commbox send-bulk`` reads)."""

from __future__ import annotations

import csv
import enum
import functools
import inspect
import json
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from .._exceptions import ConfigurationError
from ..models import NewObject, NewUser
from ._types import BulkMessage, Rejected

__all__ = ["CHANNELS", "InputRecord", "read_messages", "scan_keys"]

#: ``channel`` values of an input record, each the :class:`NewObject` constructor it calls.
CHANNELS = ("sms", "sms_many", "email", "whatsapp_template", "chat")

InputRecord = dict[str, Any]


def _records(path: Path) -> Iterator[tuple[int, InputRecord | str]]:
    """(line number, record or the reason it is malformed), one at a time."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                line = reader.line_num
                if None in row:
                    yield line, "more cells than columns"
                    continue
                yield line, {k: v for k, v in row.items() if k and v not in (None, "")}
        return
    with path.open(encoding="utf-8") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except (ValueError, RecursionError) as exc:
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                yield line, f"not JSON ({reason})"
                continue
            yield line, value if isinstance(value, dict) else "not a JSON object"


def scan_keys(path: str | Path) -> tuple[int, dict[str, list[int]]]:
    """Count the records of an input file and find keys used more than once (with the line
    numbers of each use), reading it once without keeping it in memory."""
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
