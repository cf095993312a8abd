"""File attachments for multipart uploads.

An :class:`Attachment` can be sent more than once: a path is re-opened and an open file is
rewound to its start for every attempt, so a retried upload re-sends each file whole.
Files stream from disk in chunks (httpx reads them lazily); nothing is read into memory.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Union

import attrs

from ._exceptions import ConfigurationError

__all__ = ["Attachment", "AttachmentInput", "FileSource", "coerce_attachments", "open_files"]

FileSource = Union[str, "os.PathLike[str]", bytes, IO[bytes]]
AttachmentInput = Union["Attachment", str, "os.PathLike[str]", bytes, IO[bytes]]

_DEFAULT_TYPE = "application/octet-stream"


# The attachments CommBox's docs show, fixed here so the result does not depend on the
# machine's mime.types.
_KNOWN_TYPES = {
    ".pdf": "application/pdf",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}


def _guess_type(filename: str) -> str:
    known = _KNOWN_TYPES.get(os.path.splitext(filename)[1].lower())
    if known:
        return known
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or _DEFAULT_TYPE


@attrs.frozen(kw_only=True)
class Attachment:
    """One file for a multipart form field (``file`` unless told otherwise).

    ``source`` is a path, bytes, or an open binary file. ``filename`` defaults to the path's
    name (required for bytes and for file objects without a ``name``); ``content_type`` is
    guessed from the filename when not given.
    """

    source: FileSource
    filename: str | None = None
    content_type: str | None = None
    field: str = "file"

    @classmethod
    def coerce(cls, value: AttachmentInput) -> Attachment:
        if isinstance(value, Attachment):
            return value
        return cls(source=value)

    @property
    def resolved_filename(self) -> str:
        if self.filename:
            return self.filename
        src = self.source
        if isinstance(src, (str, os.PathLike)):
            return Path(src).name
        name = getattr(src, "name", None)
        if isinstance(name, str) and name:
            return Path(name).name
        raise ConfigurationError(
            "an attachment given as bytes or as a file object without a name needs filename="
        )

    @property
    def resolved_content_type(self) -> str:
        return self.content_type or _guess_type(self.resolved_filename)

    def check(self) -> None:
        """Fail before anything is sent when the file is missing, unreadable or not rewindable."""
        src = self.source
        _ = self.resolved_filename
        if isinstance(src, (str, os.PathLike)):
            path = Path(src)
            if not path.is_file():
                raise ConfigurationError(
                    f"attachment {str(path)!r} does not exist or is not a file"
                )
            if not os.access(path, os.R_OK):
                raise ConfigurationError(f"attachment {str(path)!r} is not readable")
            return
        if isinstance(src, (bytes, bytearray, memoryview)):
            return
        if not (hasattr(src, "read") and hasattr(src, "seek") and hasattr(src, "tell")):
            raise ConfigurationError(
                "attachment source must be a path, bytes or a binary file, "
                f"got {type(src).__name__}"
            )
        try:
            seekable = src.seekable()
        except (OSError, ValueError) as exc:  # closed file
            raise ConfigurationError(f"attachment file object is not usable: {exc}") from exc
        if not seekable:
            raise ConfigurationError(
                "attachment file object is not seekable, so a retried upload could not re-send "
                "it whole; pass a path or bytes instead"
            )

    def size(self) -> int | None:
        src = self.source
        if isinstance(src, (str, os.PathLike)):
            return Path(src).stat().st_size
        if isinstance(src, (bytes, bytearray, memoryview)):
            return len(src)
        return None


def coerce_attachments(files: Sequence[AttachmentInput] | None) -> list[Attachment]:
    """Normalise and check attachments: every problem is raised before a request is sent."""
    if files is None:
        return []
    if isinstance(files, (str, bytes, os.PathLike)) or hasattr(files, "read"):
        files = [files]  # type: ignore[list-item]
    result = []
    for index, value in enumerate(files):
        attachment = Attachment.coerce(value)
        try:
            attachment.check()
        except ConfigurationError as exc:
            raise ConfigurationError(f"files[{index}]: {exc}") from None
        result.append(attachment)
    return result


@contextmanager
def open_files(
    attachments: Sequence[Attachment],
) -> Iterator[list[tuple[str, tuple[str, IO[bytes] | bytes, str]]]]:
    """httpx ``files=`` entries for one attempt: paths opened fresh, file objects rewound."""
    with ExitStack() as stack:
        entries: list[tuple[str, tuple[str, IO[bytes] | bytes, str]]] = []
        for att in attachments:
            src = att.source
            body: IO[bytes] | bytes
            if isinstance(src, (str, os.PathLike)):
                body = stack.enter_context(open(src, "rb"))
            elif isinstance(src, (bytes, bytearray, memoryview)):
                body = bytes(src)
            else:
                # httpx rewinds file objects to 0 as it renders each request, so every
                # attempt sends the whole file.
                body = src
            entries.append((att.field, (att.resolved_filename, body, att.resolved_content_type)))
        yield entries
