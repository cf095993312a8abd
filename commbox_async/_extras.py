"""Optional dependencies: the error that says which ``pip install`` line brings a missing one."""

from __future__ import annotations

from ._exceptions import MissingExtraError

__all__ = ["missing_extra"]


def missing_extra(exc: ImportError, *, extra: str, what: str) -> MissingExtraError:
    """The error to raise (``from None``) when an import for ``what`` failed with ``exc``:
    it names the missing module and ``pip install 'commbox-async[extra]'``."""
    # The package, not the submodule whose import failed: that is what an install brings.
    module = exc.name.split(".")[0] if exc.name else None
    missing = f"no module named {module!r}" if module else str(exc)
    return MissingExtraError(
        f"{what} needs the {extra!r} extra ({missing}): pip install 'commbox-async[{extra}]'",
        extra=extra,
        module=module,
    )
