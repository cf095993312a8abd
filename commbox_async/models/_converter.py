"""The one cattrs converter, configured here and nowhere else.

Input is tolerant: keys match in any casing (``ObjectId``, ``objectId``, ``objectid``,
``object_id``); numbers in strings become ints (exact beyond 2**53); ``""`` for an optional
number or date is None; ``Content``/``Data`` may be a JSON string or an object; a single object
where a list is expected becomes a one-element list; dates in every format the docs show become
timezone-aware UTC datetimes. Unknown keys are kept in ``extra``. A decoded model has every
field set (a default where the payload has none) and holds its JSON read-only (``_frozen``), so
it is immutable all the way down and hashes.

Output is exact: request models unstructure to the wire form of the docs' examples, key for key,
with None-valued fields omitted; decoded models unstructure with the keys they were read from.

Each model gets a decoder compiled once from its attrs fields (the hot path of decoding a
1,000-child conversation or a webhook burst), registered with cattrs as a hook factory; it plans
each key shape once and builds instances through a generated builder (see :func:`_builder`).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any, TypeVar, Union

import attrs
import cattrs

from .._exceptions import REDACTED, DecodeError, brief
from .._json import (
    JSONLimitError,
    MaxDepth,
    check,
    current_max_depth,
    guarded_decode,
    loads,
    to_utf8,
)
from .._secret import clear_locals
from ._enums import OpenIntEnum, StreamProviderType, coerce_enum
from ._frozen import EMPTY, FrozenDict, freeze, thaw

__all__ = [
    "EMPTY",
    "JsonObject",
    "Model",
    "converter",
    "parse_date",
    "parse_datetime",
    "structure",
    "unstructure",
    "wire",
]

T = TypeVar("T")


#: A JSON object that CommBox may also send as a JSON string (``Content``, ``Data``). When the
#: string is not a JSON object it is kept as the string, so nothing is lost. Decoded, the object
#: is a read-only ``dict`` (a ``FrozenDict``, its lists ``FrozenList``\ s).
JsonObject = dict[str, Any] | str

_WIRE = "commbox_wire"
_ALIASES = "commbox_aliases"
_SECRET = "commbox_secret"  # noqa: S105 - a metadata key


def wire(
    name: str,
    *aliases: str,
    default: Any = None,
    factory: Any = None,
    repr: bool = True,
    secret: bool = False,
    validator: Any = None,
) -> Any:
    """A model field whose wire name is ``name``; ``aliases`` are other spellings to accept.

    Any casing of the name or an alias matches (``objectId``, ``ObjectID``, ``object_id``).
    ``repr=False`` keeps a value out of the model's repr. ``secret=True`` marks a credential
    (a password, a login ticket): kept out of the repr, and a :class:`DecodeError` about it (or
    about a model holding it) never carries the value, in its message, ``value`` or ``args``.
    ``validator``: an attrs validator, run by ``__init__`` and by the decoder alike (a failure
    there is a :class:`DecodeError` at the field's key). A default (or ``factory``'s value) is
    shared by every decoded instance, frozen: it must be immutable.
    """
    meta = {_WIRE: name, _ALIASES: aliases, _SECRET: secret}
    shown = repr and not secret
    if factory is not None:
        return attrs.field(factory=factory, metadata=meta, repr=shown, validator=validator)
    return attrs.field(default=default, metadata=meta, repr=shown, validator=validator)


def is_secret(field: attrs.Attribute[Any]) -> bool:
    """Whether a model field was declared with ``wire(..., secret=True)``."""
    return bool(field.metadata.get(_SECRET))


def _read_only(value: Mapping[str, Any]) -> Mapping[str, Any]:
    if type(value) is FrozenDict:
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    frozen: Mapping[str, Any] = freeze(value)
    return frozen


@attrs.frozen(kw_only=True)
class Model:
    """Base of every CommBox model: frozen, slotted, keyword-only, hashable when its fields are.

    ``extra`` holds the fields CommBox sent that the model does not name, under their original
    keys. ``wire_keys`` remembers the spelling of the keys a decoded value was read from, so
    unstructuring it gives the same keys back; it takes no part in equality or the hash. Both
    are read-only mappings, whatever mapping is passed in.

    A decoded model is immutable all the way down: the JSON objects and arrays it keeps
    (``Content``, ``Data``, ``extra``'s values, ``Any`` fields) are read-only
    :class:`~commbox_async.models.FrozenDict` and :class:`~commbox_async.models.FrozenList`
    values, equal to the plain JSON, so every decoded model hashes. A model built by hand holds
    what it was given: one holding a plain ``dict`` (``ObjectChild(content={...})``) is as
    unhashable as a tuple holding one.
    """

    extra: Mapping[str, Any] = attrs.field(default=EMPTY, converter=_read_only, repr=False)
    wire_keys: Mapping[str, str] = attrs.field(
        default=EMPTY, converter=_read_only, repr=False, eq=False, hash=False
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON form CommBox reads and writes (the model's wire names, None omitted): a new
        plain value, sharing no dict or list with the model."""
        result: dict[str, Any] = converter.unstructure(self)
        return result

    @classmethod
    def from_wire(cls: type[T], data: Any, *, max_depth: int | None = None) -> T:
        """Decode a JSON value (a dict, or a JSON string of one); raises :class:`DecodeError`.
        ``max_depth``: as :func:`structure`'s."""
        try:
            return structure(data, cls, max_depth=max_depth)
        except DecodeError as exc:
            if exc.secret:
                del data  # as in structure: the value is not left in this frame either
            raise


# -- scalars ---------------------------------------------------------------------------------

_NULLS = frozenset({"", "null", "none", "undefined"})


def _clean(text: str) -> str:
    # The spec's examples put a stray comma inside quoted numbers and nulls ("1769668,",
    # "null,"); a trailing comma carries no meaning in a number, date or null.
    return text.strip().removesuffix(",").rstrip()


def _is_null_text(value: Any) -> bool:
    return isinstance(value, str) and _clean(value).lower() in _NULLS


def _int_digits_limit() -> int:
    """The interpreter's limit on the digits ``int()`` converts (0: none; 4,300 by default)."""
    get = getattr(sys, "get_int_max_str_digits", None)
    return int(get()) if get is not None else 0


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("expected an integer, got a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = _clean(value)
        try:
            return int(text)
        except ValueError:
            pass
        limit = _int_digits_limit()
        if limit and len(text) > limit:
            raise ValueError(
                f"a number of {len(text)} characters is longer than the limit of {limit} digits"
            )
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{brief(value)} is not an integer") from None
        if number.is_integer():
            return int(number)
        raise ValueError(f"{brief(value)} is not a whole number")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("expected a number, got a bool")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise TypeError(f"expected a number, got {type(value).__name__}")


_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"expected a boolean, got {brief(value)}")


def to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # The spec's examples give phone numbers and unique ids as bare numbers.
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__}")


_LENIENT = json.JSONDecoder(strict=False)
_CURLY = str.maketrans({"\u201c": '"', "\u201d": '"'})


def loads_lenient(text: str) -> Any:
    """JSON as CommBox's docs write it inside strings: raw line breaks inside string values,
    stray closing braces after the value, curly quotes. Raises ValueError otherwise (and
    :class:`JSONLimitError` for text that breaks a decoding limit)."""
    for candidate in (text, text.translate(_CURLY)):
        stripped = candidate.strip()
        raw, _ = to_utf8(stripped)
        check(raw, current_max_depth())
        try:
            value, end = guarded_decode(_LENIENT.raw_decode, stripped)
        except json.JSONDecodeError:
            continue
        if not stripped[end:].strip(" \t\r\n}"):
            return value
    raise ValueError("not JSON")


def to_json_object(value: Any) -> dict[str, Any] | str:
    """A JSON object, or a string holding one (decoded). A string that is not JSON stays the
    string; one that breaks a decoding limit (too deep, a lone surrogate) is an error."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        if value == "{}":  # CommBox's most common Content
            return {}
        try:
            decoded = loads(value)
        except JSONLimitError:
            raise
        except ValueError:
            try:
                decoded = loads_lenient(value)
            except JSONLimitError:
                raise
            except ValueError:
                return value
        if isinstance(decoded, dict):
            return decoded
        return value
    raise TypeError(f"expected a JSON object or a JSON string of one, got {type(value).__name__}")


def to_frozen_json_object(value: Any) -> dict[str, Any] | str:
    """:func:`to_json_object`, read-only: what a model's ``JsonObject`` field holds."""
    if value == "{}":
        return EMPTY
    decoded = to_json_object(value)
    if type(decoded) is str:
        return decoded
    frozen: FrozenDict = freeze(decoded)
    return frozen


# -- dates -----------------------------------------------------------------------------------

# The patterns are matched against the text with its whitespace runs collapsed to single
# spaces (one linear pass), and no two neighbouring parts of a pattern can match the same
# character, so a match attempt is linear in the text's length whatever it holds. (Patterns
# with neighbouring ``\s*`` take cubic time on a run of spaces: 2,000 spaces inside a date
# field took seconds.) ``fullmatch`` anchors both ends.
_TIME = r"(?:(?: ?T ?| )(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(?: ?([AaPp][Mm]))?)?"
_ZONE = r"(?: ?(Z|z|UTC|GMT|[+-]\d{2}:?\d{2}))?"
_YMD = re.compile(r"(\d{4})-(\d{1,2})[- ]+(\d{1,2})" + _TIME + _ZONE)
_DMY = re.compile(r"(\d{1,2})-(\d{1,2})-(\d{4})" + _TIME + _ZONE)  # 09-06-2024 07:28:47
_MDY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})" + _TIME + _ZONE)  # 03/28/2017 05:30:00
# Each pattern with where its year, month and day are among the groups.
_DATE_PATTERNS = ((_YMD, (0, 1, 2)), (_DMY, (2, 1, 0)), (_MDY, (2, 0, 1)))
_DAY_FIRST = frozenset("-/")


#: The longest date or date-time text read (whitespace included). CommBox's forms are under 40
#: characters; a longer text is refused before it is split: splitting a few hundred KB of
#: spaced-out text allocates enough objects to start the collector, far from linear.
MAX_DATE_CHARS = 256


def _bounded(text: str) -> str:
    if len(text) > MAX_DATE_CHARS:
        raise ValueError(
            f"a date of {len(text):,} characters, {brief(text)}: none CommBox sends is longer "
            f"than {MAX_DATE_CHARS}"
        )
    return text


def _date_match(text: str) -> tuple[re.Match[str], tuple[int, int, int]] | None:
    squeezed = " ".join(text.split())
    for pattern, order in _DATE_PATTERNS:
        m = pattern.fullmatch(squeezed)
        if m is not None:
            return m, order
    return None


def _maybe_iso(text: str) -> bool:
    # Every form fromisoformat reads starts with a four-digit year; the day- and month-first
    # forms CommBox's webhooks send ("16-06-2024 08:35:11") skip its failing attempt.
    return text[1:2] not in _DAY_FIRST and text[2:3] not in _DAY_FIRST


def _zone(text: str | None) -> timezone:
    if not text or text.upper() in ("Z", "UTC", "GMT"):
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def parse_datetime(value: Any) -> datetime:
    """Any date-time form the docs show, as an aware UTC datetime (naive times are UTC).

    Raises ValueError (TypeError for a non-string) for anything else, including a time that
    has no UTC equivalent (``9999-12-31T23:00:00-05:00``), in time linear in the text's length.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        dt = _parse_datetime_text(_clean(_bounded(value)))
    else:
        raise TypeError(f"expected a date-time string, got {type(value).__name__}")
    tz = dt.tzinfo
    if tz is timezone.utc:
        return dt
    if tz is None:
        return dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"date-time {brief(value)} is out of range in UTC") from None


def _parse_datetime_text(text: str) -> datetime:
    if sys.version_info >= (3, 11) and _maybe_iso(text):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    found = _date_match(text)
    if found is None:
        raise ValueError(f"unrecognised date-time {brief(text)}")
    m, (y, mo, d) = found
    groups = m.groups()
    hh, mm, ss, frac, ampm, zone = groups[3:]
    hour = int(hh) if hh else 0
    if ampm:
        hour = hour % 12 + (12 if ampm.lower() == "pm" else 0)
    return datetime(
        int(groups[y]),
        int(groups[mo]),
        int(groups[d]),
        hour,
        int(mm) if mm else 0,
        int(ss) if ss else 0,
        int(frac[:6].ljust(6, "0")) if frac else 0,
        tzinfo=_zone(zone) if zone else timezone.utc,  # naive times are UTC
    )


_UTC = timezone.utc
_fromisoformat = datetime.fromisoformat


def _optional_int(value: Any) -> int | None:
    # CommBox sends most numbers as strings ("3377699720568713"): int() takes them directly.
    if type(value) is str:
        try:
            return int(value)
        except ValueError:
            pass
    result: int | None = _OPTIONAL_INT(value)
    return result


def _optional_enum(cls: type[OpenIntEnum]) -> Decoder:
    members = cls._value2member_map_
    slow = _optional(_enum_decoder(cls), null_text=True)

    def decode(value: Any) -> Any:
        if type(value) is str and value.isdecimal():
            member = members.get(int(value))
            if member is not None:
                return member
        return slow(value)

    return decode


def _optional_datetime(value: Any) -> datetime | None:
    # The hot path for CommBox's usual ISO timestamps; everything else takes parse_datetime.
    if type(value) is str and sys.version_info >= (3, 11) and _maybe_iso(value):
        try:
            dt = _fromisoformat(value)
        except ValueError:
            pass
        else:
            tz = dt.tzinfo
            if tz is _UTC:
                return dt
            if tz is None:
                return dt.replace(tzinfo=_UTC)
            with contextlib.suppress(OverflowError):  # no UTC equivalent: parse_datetime says so
                return dt.astimezone(_UTC)
    result: datetime | None = _OPTIONAL_DATETIME(value)
    return result


def parse_date(value: Any) -> date:
    """A date-only value (birthdays): ``1951-10-10``, ``01/01/1980``, or a date-time's date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected a date string, got {type(value).__name__}")
    found = _date_match(_bounded(value))
    if found is None:
        raise ValueError(f"unrecognised date {brief(value)}")
    m, (y, mo, d) = found
    groups = m.groups()
    return date(int(groups[y]), int(groups[mo]), int(groups[d]))


def format_datetime(value: datetime) -> str:
    value = value.astimezone(timezone.utc) if value.tzinfo else value
    text = value.replace(tzinfo=None).isoformat()
    return text + "Z"


# -- compiling decoders and encoders ---------------------------------------------------------

Decoder = Callable[[Any], Any]
Encoder = Callable[[Any], Any]

_SCALARS: dict[Any, Decoder] = {
    int: to_int,
    float: to_float,
    bool: to_bool,
    str: to_str,
    datetime: parse_datetime,
    date: parse_date,
    Any: freeze,  # JSON of any shape, read-only
    object: freeze,
}


def _union_args(tp: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return typing.get_args(tp)
    return None


def _is_json_object(args: tuple[Any, ...]) -> bool:
    return set(args) - {type(None)} == {dict[str, Any], str}


def compile_decoder(tp: Any) -> Decoder:
    """A decoder for a field type, built once per model class."""
    if tp in _SCALARS:
        return _SCALARS[tp]
    args = _union_args(tp)
    if args is not None:
        return _union_decoder(args)
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        item_args = typing.get_args(tp)
        return _sequence(compile_decoder(item_args[0]))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return _mapping
    if _is_subclass(tp, OpenIntEnum):
        return _enum_decoder(tp)
    if _is_subclass(tp, Model):
        return _LazyModel(tp)
    raise TypeError(f"no decoder for field type {tp!r}")


def _union_decoder(args: tuple[Any, ...]) -> Decoder:
    optional = type(None) in args
    rest = tuple(a for a in args if a is not type(None))
    if _is_json_object(args):
        return (
            _optional(to_frozen_json_object, null_text=False) if optional else to_frozen_json_object
        )
    # The common optional fields get prebuilt decoders: the generic path costs a call more.
    if len(rest) == 1 and _is_subclass(rest[0], Model):
        # None never reaches a field decoder (the model decoder leaves the field unset).
        return _LazyModel(rest[0])
    if rest == (datetime,):
        return _optional_datetime
    if rest == (int,):
        return _optional_int
    if len(rest) == 1 and _is_subclass(rest[0], OpenIntEnum):
        return _optional_enum(rest[0])
    inner: Decoder
    if rest == (StreamProviderType, str):
        inner = _provider_type
    elif len(rest) == 1:
        inner = compile_decoder(rest[0])
    else:
        inner = _first_of([compile_decoder(a) for a in rest])
    return _optional(inner, null_text=rest[0] is not str) if optional else inner


def _is_subclass(tp: Any, base: type) -> bool:
    return isinstance(tp, type) and issubclass(tp, base)


def _enum_decoder(cls: type[OpenIntEnum]) -> Decoder:
    members = cls._value2member_map_

    def decode(value: Any) -> Any:
        if type(value) is int:
            member = members.get(value)
            if member is not None:
                return member
        return coerce_enum(cls, value)

    return decode


def _optional(inner: Decoder, *, null_text: bool) -> Decoder:
    if not null_text:

        def decode_plain(value: Any) -> Any:
            return None if value is None else inner(value)

        return decode_plain

    def decode(value: Any) -> Any:
        if value is None:
            return None
        try:
            return inner(value)
        except (TypeError, ValueError):
            # "" / "null" for a number, date or enum means "no value"; checked only when the
            # value did not decode, which keeps the common path to one call.
            if _is_null_text(value):
                return None
            raise

    return decode


_PROVIDERS = typing.cast("dict[Any, StreamProviderType]", StreamProviderType._value2member_map_)


_OPTIONAL_INT = _optional(to_int, null_text=True)
_OPTIONAL_DATETIME = _optional(parse_datetime, null_text=True)


def _provider_type(value: Any) -> StreamProviderType | str:
    if type(value) is int or (type(value) is str and value.isdecimal()):
        member = _PROVIDERS.get(int(value))
        if member is not None:
            return member
    try:
        return coerce_enum(StreamProviderType, value)
    except ValueError:
        if isinstance(value, str):
            return value  # a provider name CommBox added after these docs ("BumpYard")
        raise


def _first_of(decoders: list[Decoder]) -> Decoder:
    def decode(value: Any) -> Any:
        errors = []
        for dec in decoders:
            try:
                return dec(value)
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors))

    return decode


def _mapping(value: Any) -> Any:
    if isinstance(value, Mapping):
        return freeze(value)
    if isinstance(value, str):
        decoded = loads(value)
        if isinstance(decoded, dict):
            return freeze(decoded)
    raise TypeError(f"expected an object, got {type(value).__name__}")


def _sequence(item: Decoder) -> Decoder:
    def decode(value: Any) -> tuple[Any, ...]:
        nonlocal item
        if isinstance(item, _LazyModel):
            item = _resolve(item)
        if value is None or value == "":
            return ()
        if isinstance(value, Mapping):
            # XML-shaped JSON wraps lists: {"Activities": {"Activity": {...} or [...]}}.
            if len(value) == 1:
                (only,) = value.values()
                if isinstance(only, (list, Mapping)):
                    value = only
            if isinstance(value, Mapping):
                value = [value]
        elif isinstance(value, str):
            value = [value] if not value.lstrip().startswith("[") else loads(value)
        if not isinstance(value, (list, tuple)):
            value = [value]
        out = []
        for index, element in enumerate(value):
            try:
                out.append(item(element))
            except DecodeError as exc:
                raise _prefixed(exc, f"[{index}]") from None
            except Exception as exc:
                raise DecodeError(
                    str(exc), model="list item", path=f"[{index}]", value=element
                ) from None
        return tuple(out)

    return decode


def _prefixed(exc: DecodeError, prefix: str) -> DecodeError:
    if not exc.path:
        path = prefix
    elif exc.path.startswith("["):
        path = prefix + exc.path
    else:
        path = f"{prefix}.{exc.path}"
    return DecodeError(exc.message, model=exc.model, path=path, value=exc.value)


def _normalise(key: str) -> str:
    return key.replace("_", "").replace(" ", "").replace("-", "").lower()


_norm_short_key = functools.lru_cache(maxsize=4096)(_normalise)


def _norm_key(key: str) -> str:
    # Cached, but boundedly: the keys come from the payloads, and a hostile one sends new ones.
    return _norm_short_key(key) if len(key) <= 64 else _normalise(key)


_DECODERS: dict[type[Any], Decoder] = {}
_ENCODERS: dict[type[Any], Encoder] = {}


class _LazyModel:
    """A nested model's decoder, resolved on the enclosing decoder's first use (models refer
    to each other, and to themselves)."""

    __slots__ = ("cls", "dec")

    def __init__(self, cls: type[Model]) -> None:
        self.cls = cls
        self.dec: Decoder | None = None

    def __call__(self, value: Any) -> Any:
        dec = self.dec
        if dec is None:
            dec = self.dec = _model_decoder(self.cls)
        return dec(value)


def _models_within(cls: type[Model]) -> list[type[Model]]:
    """``cls`` and every model it nests, at any depth."""
    seen: list[type[Model]] = []
    todo: list[type[Model]] = [cls]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.append(current)
            todo.extend(m for a, _, _ in _field_specs(current) for m in _nested_models(a.type))
    return seen


def holds_secrets(cls: type[Model]) -> bool:
    """Whether a model has a secret field, itself or in a model it nests."""
    return any(is_secret(a) for m in _models_within(cls) for a, _, _ in _field_specs(m))


def _nested_models(tp: Any) -> list[type[Model]]:
    if isinstance(tp, type):
        return [tp] if issubclass(tp, Model) else []
    return [m for arg in typing.get_args(tp) for m in _nested_models(arg)]


def _model_decoder(cls: type[Model]) -> Decoder:
    return _DECODERS.get(cls) or _build_model_decoder(cls)


def _resolve(dec: Decoder) -> Decoder:
    return _model_decoder(dec.cls) if isinstance(dec, _LazyModel) else dec


def _field_specs(cls: type[Model]) -> list[tuple[attrs.Attribute[Any], str, tuple[str, ...]]]:
    hints = typing.get_type_hints(cls)
    specs = []
    for a in attrs.fields(cls):
        if a.name in ("extra", "wire_keys"):
            continue
        wire_name = a.metadata.get(_WIRE) or a.name
        specs.append((a.evolve(type=hints[a.name]), wire_name, a.metadata.get(_ALIASES, ())))
    return specs


def _fast_type(tp: Any) -> type | None:
    """A type whose values the field takes as they are, skipping the decoder."""
    args = _union_args(tp)
    if args is not None:
        rest = [a for a in args if a is not type(None)]
        if _is_json_object(args):
            return None  # a dict is frozen, a string parsed
        if len(rest) == 1:
            tp = rest[0]
        elif rest == [StreamProviderType, str]:
            return None
    if tp in (int, str, bool, float):
        return typing.cast(type, tp)
    return None


# Shapes are cached per model class, at most _MAX_SHAPES of them, and only shapes CommBox's
# own payloads could have: a shape holds its keys, and a hostile body sends thousands of
# unique ones (a shape past these bounds is compiled for the one object and dropped).
_MAX_SHAPES = 512
_MAX_SHAPE_KEYS = 128
_MAX_SHAPE_CHARS = 4096


# A field as the decoder sees it: field name, decoder, fast type, canonical spelling, and its
# position in the builder's arguments.
_Spec = tuple[str, Decoder, type | None, str, int]
# A shape's plan: (key, position, decoder, fast type) per key that feeds a field; the builder's
# arguments with every field's default and the shape's wire_keys; the keys kept in extra.
_Plan = tuple[list[tuple[Any, int, Decoder, type | None]], list[Any], tuple[Any, ...]]


def _builder(cls: type[Model]) -> Callable[..., Any]:
    """``build(*values)``: an instance of ``cls`` whose fields, in ``attrs.fields`` order, are
    ``values``, made without ``__init__``.

    A decoded model has every slot set (a User has 24), and the frozen model's ``__setattr__``
    refuses plain assignment, which leaves a slot descriptor's ``__set__`` per slot: its cost
    per field is several times a plain assignment's. So the instance is made as a private
    subclass that adds nothing but the plain ``__setattr__``, its slots are assigned, and its
    class is switched to ``cls`` (the two share one layout) before anything else sees it.
    Generated once per model, as attrs generates ``__init__``; the names in the code are the
    model's own field names, never anything from a payload.
    """
    names = [a.name for a in attrs.fields(cls)]
    building = type(
        f"_Building{cls.__name__}",
        (cls,),
        {
            "__slots__": (),
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
            "__module__": __name__,
        },
    )
    params = ", ".join(f"v{i}" for i in range(len(names)))
    sets = "".join(f"    o.{name} = v{i}\n" for i, name in enumerate(names))
    source = (
        f"def build({params}):\n    o = new(building)\n{sets}    o.__class__ = cls\n    return o\n"
    )
    namespace: dict[str, Any] = {"new": object.__new__, "building": building, "cls": cls}
    code = compile(source, f"<commbox_async builder of {cls.__qualname__}>", "exec")
    exec(code, namespace)  # noqa: S102 - the source above, made of the model's field names
    build: Callable[..., Any] = namespace["build"]
    return build


def _decoded_defaults(cls: type[Model]) -> dict[str, Any]:
    """What each field of a decoded ``cls`` holds when the payload leaves it out (or sends
    null): its default, made once, frozen and shared by every instance (so it must be
    immutable; a factory's list or dict becomes a FrozenList or FrozenDict).

    Decoded instances are built without ``__init__`` (it would cost a keyword dict per object
    and a call per field), so the decoder does what ``__init__`` does: it sets every field and
    runs the validators. Whatever else ``__init__`` could run is refused here, on the model's
    first decode, rather than skipped.
    """
    problems = [
        f"it defines {hook}"
        for hook in ("__attrs_pre_init__", "__attrs_post_init__")
        if hasattr(cls, hook)
    ]
    defaults: dict[str, Any] = {}
    for a in attrs.fields(cls):
        if a.name in ("extra", "wire_keys"):
            continue  # the decoder makes them read-only itself, as their converter would
        if a.converter is not None:
            problems.append(f"{a.name} has a converter (the field's decoder converts)")
        default = a.default
        factory = getattr(default, "factory", None)  # an attrs.Factory
        if factory is not None:
            if getattr(default, "takes_self", False):
                problems.append(f"{a.name}'s default factory takes self")
                continue
            default = factory()
        if default is attrs.NOTHING:
            problems.append(f"{a.name} has no default (CommBox may leave any field out)")
            continue
        default = freeze(default)
        try:
            hash(default)
        except TypeError:
            problems.append(f"{a.name}'s default is mutable ({type(default).__name__})")
        defaults[a.name] = default
    if problems:
        raise TypeError(f"{cls.__name__} cannot be decoded: {'; '.join(problems)}")
    return defaults


def _kept(data: Mapping[Any, Any], keys: tuple[Any, ...], model: str, hide: bool) -> FrozenDict:
    """``extra``: the values under ``keys``, read-only."""
    kept = {}
    for key in keys:
        value = data[key]
        try:
            kept[key] = freeze(value)
            continue
        except JSONLimitError as exc:
            error = DecodeError(
                str(exc),
                model=model,
                path=key if isinstance(key, str) else brief(key),
                value=REDACTED if hide else value,
            )
        raise error
    return FrozenDict(kept)


def _build_model_decoder(cls: type[Model]) -> Decoder:
    name = cls.__name__
    defaults = _decoded_defaults(cls)
    for nested in _models_within(cls)[1:]:  # refused now, not when a payload first nests one
        _decoded_defaults(nested)
    fields = attrs.fields(cls)
    position = {a.name: i for i, a in enumerate(fields)}
    build = _builder(cls)
    # key as received -> the field's spec
    by_key: dict[str, _Spec] = {}
    by_norm: dict[str, _Spec] = {}
    plan = [
        (a.name, compile_decoder(a.type), _fast_type(a.type), wire_name, aliases)
        for a, wire_name, aliases in _field_specs(cls)
    ]
    # Every field's default, and extra's and wire_keys': what each shape's arguments start from.
    row = [defaults.get(a.name, EMPTY) for a in fields]
    extra_at, keys_at = position["extra"], position["wire_keys"]
    secrets = frozenset(a.name for a in fields if is_secret(a))
    spelled = {field_name: wire_name for field_name, _, _, wire_name, _ in plan}
    checks = [(a, a.validator) for a in fields if a.validator is not None]
    # An object-level error shows the object: not when it holds a secret, here or nested.
    hide = holds_secrets(cls)

    def shown(value: Any) -> Any:
        return REDACTED if hide else value

    resolved = False

    def field_error(exc: Exception, key: str, value: Any) -> DecodeError:
        spec = by_key.get(key) or by_norm.get(_norm_key(key))
        if spec is not None and spec[0] in secrets:
            return DecodeError(
                f"not a valid value ({type(value).__name__}); a secret field's value is not shown",
                model=name,
                path=key,
                value=REDACTED,
            )
        if isinstance(exc, DecodeError):
            return _prefixed(exc, key)
        return DecodeError(str(exc) or type(exc).__name__, model=name, path=key, value=value)

    def validate(obj: Model) -> None:
        # As __init__ does: once every field is set, unless attrs' validators are disabled.
        if attrs.validators.get_disabled():
            return
        for a, validator in checks:
            value = getattr(obj, a.name)
            try:
                validator(obj, a, value)
                continue
            except Exception as exc:
                error = field_error(exc, obj.wire_keys.get(a.name, spelled[a.name]), value)
            raise error

    def resolve() -> None:
        # Nested models are looked up once, on first use, when every model class exists.
        for field_name, dec, fast, wire_name, aliases in plan:
            spec = (field_name, _resolve(dec), fast, wire_name, position[field_name])
            by_key[wire_name] = spec
            for key in (wire_name, field_name, *aliases):
                by_norm.setdefault(_norm_key(key), spec)

    # Payloads of one endpoint share their keys, so each distinct key tuple ("shape") is
    # resolved once into a plan: which key feeds which field, what goes to extra, and the
    # spellings to remember. Decoding an object is then one pass over its plan, into a copy of
    # the shape's arguments, which hold a default for every field the payload lacks.
    shapes: dict[tuple[Any, ...], _Plan] = {}

    def compile_shape(shape: tuple[Any, ...]) -> _Plan:
        steps: list[tuple[Any, int, Decoder, type | None]] = []
        extra_keys: list[Any] = []
        keys: dict[str, str] = {}
        taken: set[str] = set()
        for key in shape:
            spec = by_key.get(key) if isinstance(key, str) else None
            if spec is None and isinstance(key, str):
                spec = by_norm.get(_norm_key(key))
            if spec is None or spec[0] in taken:
                extra_keys.append(key)  # unknown, or a second spelling of a field: kept
                continue
            field_name, dec, fast, canonical, at = spec
            taken.add(field_name)
            if key != canonical:
                keys[field_name] = key
            steps.append((key, at, dec, fast))
        args = list(row)
        args[keys_at] = FrozenDict(keys) if keys else EMPTY
        entry = (steps, args, tuple(extra_keys))
        if (
            len(shapes) < _MAX_SHAPES
            and len(shape) <= _MAX_SHAPE_KEYS
            and sum(len(k) if isinstance(k, str) else 64 for k in shape) <= _MAX_SHAPE_CHARS
        ):
            shapes[shape] = entry
        return entry

    def decode(data: Any) -> Model:
        nonlocal resolved
        if not resolved:
            resolve()
            resolved = True
        if type(data) is not dict:
            if isinstance(data, str):
                text = data
                problem = None
                try:
                    data = loads(text)
                except JSONLimitError as exc:
                    problem = str(exc)
                except ValueError:
                    problem = "expected an object"
                if problem is not None:  # raised here: the JSON error (and text) is no context
                    raise DecodeError(problem, model=name, path="", value=shown(text))
            if not isinstance(data, Mapping):
                raise DecodeError(
                    f"expected an object, got {type(data).__name__}",
                    model=name,
                    path="",
                    value=shown(data),
                )
        shape = tuple(data)
        entry = shapes.get(shape)
        if entry is None:
            entry = compile_shape(shape)
        steps, args, extra_keys = entry
        values = args.copy()
        for key, at, dec, fast in steps:
            value = data[key]
            if type(value) is fast:
                values[at] = value
                continue
            if value is None:
                continue  # null: the field keeps its default
            try:
                values[at] = dec(value)
                continue
            except Exception as exc:
                error = field_error(exc, key, value)
            # Raised outside the except block, so that the failure it replaces (whose message
            # may hold the value) is not its __context__ either.
            raise error
        if extra_keys:
            values[extra_at] = _kept(data, extra_keys, name, hide)
        obj: Model = build(*values)
        if checks:
            validate(obj)
        return obj

    _DECODERS[cls] = decode
    return decode


def compile_encoder(tp: Any) -> Encoder | None:
    """None means "emit as is" (str, int, bool); JSON is copied (see :func:`thaw`)."""
    if tp in (int, float, bool, str):
        return None
    if _holds_json(tp):
        return thaw
    args = _union_args(tp)
    if args is not None:
        encoders = [compile_encoder(a) for a in args if a is not type(None)]
        real = [e for e in encoders if e is not None]
        if not real:
            return None
        return _encode_any
    if tp is datetime:
        return format_datetime
    if tp is date:
        return date.isoformat
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        item = compile_encoder(typing.get_args(tp)[0])
        if item is None:
            return list
        return lambda seq: [item(v) for v in seq]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return int
    if isinstance(tp, type) and issubclass(tp, Model):
        return _encode_any
    return None


def _holds_json(tp: Any) -> bool:
    """Whether a field of type ``tp`` holds plain JSON (frozen, when decoded)."""
    if tp in (Any, object, dict, Mapping) or typing.get_origin(tp) in (dict, Mapping):
        return True
    args = _union_args(tp)
    return args is not None and _is_json_object(args)


def _encode_any(value: Any) -> Any:
    if isinstance(value, Model):
        return unstructure(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_encode_any(v) for v in value]
    if isinstance(value, dict):
        return thaw(value)
    return value


def _build_model_encoder(cls: type[Model]) -> Encoder:
    plan = [(a.name, wire_name, compile_encoder(a.type)) for a, wire_name, _ in _field_specs(cls)]

    def encode(obj: Model) -> dict[str, Any]:
        out: dict[str, Any] = {}
        keys = obj.wire_keys
        for field_name, wire_name, enc in plan:
            value = getattr(obj, field_name)
            if value is None or value == ():
                continue
            out[keys.get(field_name, wire_name) if keys else wire_name] = (
                value if enc is None else enc(value)
            )
        if obj.extra:
            for key, value in obj.extra.items():
                if key not in out:
                    out[key] = thaw(value)
        return out

    _ENCODERS[cls] = encode
    return encode


# -- the converter ---------------------------------------------------------------------------

converter = cattrs.Converter()


def _is_model(tp: Any) -> typing.TypeGuard[type[Model]]:
    return isinstance(tp, type) and issubclass(tp, Model)


def _structure_hook_factory(cls: type[Model]) -> Callable[[Any, Any], Any]:
    dec = _model_decoder(cls)
    return lambda value, _: dec(value)


def _unstructure_hook_factory(cls: type[Model]) -> Callable[[Any], Any]:
    return _ENCODERS.get(cls) or _build_model_encoder(cls)


converter.register_structure_hook_factory(_is_model, _structure_hook_factory)
converter.register_unstructure_hook_factory(_is_model, _unstructure_hook_factory)
converter.register_structure_hook(datetime, lambda v, _: parse_datetime(v))
converter.register_structure_hook(date, lambda v, _: parse_date(v))
converter.register_unstructure_hook(datetime, format_datetime)
converter.register_unstructure_hook(date, date.isoformat)
converter.register_structure_hook_func(
    lambda tp: isinstance(tp, type) and issubclass(tp, OpenIntEnum),
    lambda v, tp: coerce_enum(tp, v),
)


def structure(data: Any, cls: type[T], *, max_depth: int | None = None) -> T:
    """Decode JSON into ``cls`` (a model, or e.g. ``list[Model]``); failures are DecodeErrors.

    ``max_depth`` limits the nesting of JSON sent inside string fields (``Data``, ``Content``);
    by default the enclosing call's (``parse_event``'s, say), else 256.
    """
    if max_depth is not None:
        with MaxDepth(max_depth):
            return structure(data, cls)
    # Outside the try: a type the converter cannot decode is a TypeError, not bad input.
    decode = _model_decoder(cls) if _is_model(cls) else compile_decoder(cls)
    try:
        return typing.cast(T, decode(data))
    except DecodeError as exc:
        if exc.secret:
            # A traceback rendered with locals would show the value from the decoders'
            # frames, and from this one's input.
            clear_locals(exc)
            del data
        raise
    except Exception as exc:
        raise DecodeError(
            str(exc), model=getattr(cls, "__name__", str(cls)), path="", value=data
        ) from None


def unstructure(obj: Any) -> Any:
    """The wire (JSON) form of a model or a list of models."""
    if isinstance(obj, Model):
        enc = _ENCODERS.get(type(obj)) or _build_model_encoder(type(obj))
        return enc(obj)
    return converter.unstructure(obj)
