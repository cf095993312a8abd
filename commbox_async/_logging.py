"""``COMMBOX_LOG=debug|info``: the library's logging switched on without code.

Everything the library logs goes to the ``commbox_async`` logger and, as a library should, it
adds no handler of its own: an application configures logging as it likes. For a quick look,
or a script that configures nothing, ``COMMBOX_LOG=info`` (each retry, the first delay by the
rate limit, an adaptive rate's cuts) or ``COMMBOX_LOG=debug`` (one record per attempt too)
attaches one stderr handler to that logger alone, at import, and nothing else: the root logger
and every other logger are left as they are. Unset, importing the library changes nothing.
"""

from __future__ import annotations

import logging
import os
import warnings

__all__ = ["LOG_ENV", "configure_from_env"]

LOG_ENV = "COMMBOX_LOG"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_from_env() -> logging.Handler | None:
    """Attach a stderr handler to the ``commbox_async`` logger at the level ``COMMBOX_LOG``
    names; return it (None when the variable is unset or empty). Idempotent."""
    value = os.environ.get(LOG_ENV, "").strip().lower()
    if not value:
        return None
    level = _LEVELS.get(value)
    if level is None:
        warnings.warn(
            f"{LOG_ENV}={value!r} is ignored: use {LOG_ENV}=debug or {LOG_ENV}=info",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    logger = logging.getLogger("commbox_async")
    for handler in logger.handlers:
        if getattr(handler, "_commbox_log_env", False):
            handler.setLevel(level)
            logger.setLevel(level)
            return handler
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.setLevel(level)
    handler._commbox_log_env = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler
