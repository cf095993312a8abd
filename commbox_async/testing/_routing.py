"""Routing: which handler answers a method and path, and with which path parameters."""

from __future__ import annotations

import re
from urllib.parse import unquote

import attrs

from ._handlers import Handler, Routes
from ._wire import HTTPError

_SEGMENT = r"[^/]+"


def _compile(template: str) -> re.Pattern[str]:
    """``/managers/{manager}`` matches ``/managers/123``, with ``manager`` one path segment."""
    return re.compile(re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m.group(1)}>{_SEGMENT})", template))


@attrs.frozen
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


@attrs.frozen
class Router:
    """A route table: a literal segment beats a parameter (``/managers/teams`` over
    ``/managers/{manager}``): the match with the fewest parameters wins, the first listed on a
    tie. A path no template matches is 404; a known path with another method is 501."""

    _routes: tuple[_Route, ...]

    @classmethod
    def of(cls, routes: Routes) -> Router:
        return cls(tuple(_Route(m, _compile(t), h) for m, t, h in routes))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """The handler for ``method`` on ``path`` and its (URL-decoded) path parameters."""
        known_path = False
        best: tuple[int, Handler, dict[str, str]] | None = None
        for route in self._routes:
            m = route.pattern.fullmatch(path)
            if m is None:
                continue
            known_path = True
            params = m.groupdict()
            if route.method == method and (best is None or len(params) < best[0]):
                best = (len(params), route.handler, params)
        if best is not None:
            return best[1], {k: unquote(v) for k, v in best[2].items()}
        if known_path:
            raise HTTPError(501, f"Not Implemented: {method} is not supported on {path}")
        raise HTTPError(404, f"Not found: {path}")
