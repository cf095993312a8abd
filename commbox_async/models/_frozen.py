"""Read-only JSON containers, so that a frozen model is immutable all the way down and hashes.

Decoded models hold every JSON object they keep (``Content``, ``Data``, ``extra``, the values of
``Any`` fields) as a :class:`FrozenDict` and every JSON array as a :class:`FrozenList`. They
subclass ``dict`` and ``list``: they compare equal to the plain JSON they were made from,
``json.dumps`` writes them unchanged and ``isinstance(value, dict)`` holds; every method that
would change one raises ``TypeError``; they hash (by their contents), pickle and copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn, cast

from .._json import JSONLimitError

__all__ = ["EMPTY", "FrozenDict", "FrozenList", "freeze", "thaw"]


def _readonly(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(
        f"this {type(self).__name__} is read-only (a decoded model's JSON is frozen): "
        "copy it first, e.g. dict(value) or list(value)"
    )


def _hash_mapping(self: Mapping[str, Any]) -> int:
    return hash(frozenset(self.items()))


def _hash_sequence(self: list[Any]) -> int:
    return hash(tuple(self))


class FrozenDict(dict[str, Any]):
    """A read-only dict; hashable when its values are (those :func:`freeze` makes are)."""

    __slots__ = ()

    __setitem__ = __delitem__ = __ior__ = _readonly
    clear = pop = popitem = setdefault = update = _readonly
    # typeshed declares dict.__hash__ None, which no method signature may override.
    __hash__ = cast(Any, _hash_mapping)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


class FrozenList(list[Any]):
    """A read-only list; hashable when its items are (those :func:`freeze` makes are)."""

    __slots__ = ()

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _readonly
    append = extend = insert = pop = remove = clear = sort = reverse = _readonly
    __hash__ = cast(Any, _hash_sequence)  # list.__hash__ is None in typeshed too

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))


#: The empty read-only mapping (the default of every model's ``extra`` and ``wire_keys``).
EMPTY = FrozenDict()

_SCALARS = frozenset({str, int, float, bool, type(None)})
# Values freeze() returns as they are. FrozenDict and FrozenList are among them: the ones the
# library makes come from freeze(), so they are frozen all the way down.
_DONE = _SCALARS | {FrozenDict, FrozenList}


def freeze(value: Any) -> Any:
    """``value`` with every JSON object in it (any ``Mapping``) a :class:`FrozenDict` and every
    list a :class:`FrozenList`; a tuple stays a tuple of frozen items, anything else (a string,
    a number, a datetime) is returned as it is.

    Any depth the JSON decoder allowed (``max_depth``) is walked. Only tuples, which no JSON
    decodes to, are walked by recursion alone: tuples nested deeper than the interpreter can
    walk raise :class:`JSONLimitError`.
    """
    if type(value) in _DONE:
        return value
    return _freeze(value, _RECURSE)


# The usual JSON value is small and shallow: recursion walks it fastest. Past this depth the
# walk goes on iteratively, so no depth reaches the interpreter's recursion limit.
_RECURSE = 32


def _freeze(value: Any, budget: int) -> Any:
    kind = type(value)
    if kind is not dict and kind is not list:  # JSON's own types first: no ABC check
        if kind in _DONE:
            return value
        if isinstance(value, tuple):
            try:
                return tuple([freeze(item) for item in value])
            except RecursionError:
                raise JSONLimitError("tuples nested deeper than the interpreter can walk") from None
        if isinstance(value, Mapping):
            kind = dict
        elif isinstance(value, list):
            kind = list
        else:
            return value
    if not budget and value:
        return _freeze_deep(value)
    if kind is dict:
        if not value:
            return EMPTY
        for item in value.values():  # the usual JSON object holds no other: one copy
            if type(item) not in _DONE:
                break
        else:
            return FrozenDict(value)
        frozen = {}
        for key, item in value.items():
            frozen[key] = item if type(item) in _DONE else _freeze(item, budget - 1)
        return FrozenDict(frozen)
    items = []
    for item in value:
        items.append(item if type(item) in _DONE else _freeze(item, budget - 1))
    return FrozenList(items)


_dict_set = dict.__setitem__  # filling a FrozenDict (or FrozenList) that was just made
_list_append = list.append


def _freeze_deep(value: Any) -> Any:
    top: Any = FrozenDict() if isinstance(value, Mapping) else FrozenList()
    todo = [(value, top)]
    while todo:
        source, target = todo.pop()
        mapping = type(target) is FrozenDict
        for key, item in source.items() if mapping else enumerate(source):
            if type(item) not in _DONE:
                if isinstance(item, (Mapping, list)) and item:
                    shell: Any = FrozenDict() if isinstance(item, Mapping) else FrozenList()
                    todo.append((item, shell))
                    item = shell
                else:
                    item = _freeze(item, 0)  # an empty one, a tuple or a leaf
            if mapping:
                _dict_set(target, key, item)
            else:
                _list_append(target, item)
    return top


def thaw(value: Any) -> Any:
    """A plain copy of a JSON value: every dict in it (frozen or not) a new ``dict`` and every
    list a new ``list``, so that what ``to_wire()`` returns shares nothing with the model.
    Tuples are copied as tuples; like :func:`freeze`, any depth is walked."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, (dict, list)):
        top: Any = {} if isinstance(value, dict) else []
        todo: list[tuple[Any, Any]] = [(value, top)]
        while todo:
            source, target = todo.pop()
            mapping = type(target) is dict
            for key, item in source.items() if mapping else enumerate(source):
                if type(item) not in _SCALARS:
                    if isinstance(item, (dict, list)):
                        copy: Any = {} if isinstance(item, dict) else []
                        todo.append((item, copy))
                        item = copy
                    else:
                        item = thaw(item)  # a tuple or a leaf
                if mapping:
                    target[key] = item
                else:
                    target.append(item)
        return top
    if isinstance(value, tuple):
        return tuple([thaw(item) for item in value])
    return value
