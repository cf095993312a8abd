"""The journal of a bulk send: what it has sent, is sending and has settled, per key.

:class:`Journal` is the SQLite implementation of :class:`~commbox_async.bulk.JournalBackend`
(in ``_backend``: the seam the send loop talks to), and the default.

A key's ``state`` moves like this::

    (absent) --claim--> the run has seen it (its outcome from an earlier run stands)
    (absent|pending|failed|uncertain) --sending--> sending --settle--> sent|failed|uncertain|pending
    sending --recover (the process died)--> uncertain

``sending`` is written after the client-side throttle let the request go and before its first
byte may leave; ``pending`` means the request never left the machine.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .._exceptions import ConfigurationError, JournalError
from .._verdict import Processed
from ._backend import JournalBackend, JournalEntry, Sending, UncertainEntry
from ._types import Outcome

__all__ = ["Journal", "JournalBackend", "JournalEntry", "Sending", "UncertainEntry"]


def _sqlite_error_name(exc: sqlite3.Error) -> str:
    """``SQLITE_BUSY``, ``SQLITE_CORRUPT``...: the attribute on Python 3.11+, read from the
    message before."""
    name = getattr(exc, "sqlite_errorname", None)
    if isinstance(name, str):
        return name
    text = str(exc).lower()
    for needle, guess in (
        ("locked", "SQLITE_BUSY"),
        ("readonly", "SQLITE_READONLY"),
        ("malformed", "SQLITE_CORRUPT"),
        ("not a database", "SQLITE_NOTADB"),
        ("unable to open", "SQLITE_CANTOPEN"),
    ):
        if needle in text:
            return guess
    return "SQLITE_ERROR"


_COLUMNS = {
    # name: declaration added to journals written by earlier versions
    "data": "TEXT",
    "run": "INTEGER NOT NULL DEFAULT 0",
    "failure": "TEXT",
    "digest": "TEXT",
    "processed": "INTEGER NOT NULL DEFAULT 0",
    "started": "REAL",
    "lookup": "TEXT",
    "candidates": "TEXT",
    "reconciled": "INTEGER NOT NULL DEFAULT 0",
}


class Journal:
    """The SQLite journal of a bulk send: one row per key with its state, id and error.

    WAL mode: a process killed with SIGKILL loses nothing it committed. Writes happen on the
    event loop thread; each is a small committed transaction (about 10-20 microseconds). The
    file is locked for as long as the journal is open, so a second run on it is refused with
    :class:`~commbox_async.ConfigurationError` rather than sending the same keys. Without a
    path the journal is a private temporary file that SQLite deletes on close, so even a
    journal nobody keeps does not grow in memory with the number of messages.

    A journal that cannot be used is refused when it is opened, before anything is sent, with
    :class:`~commbox_async.JournalError` naming the file and what is wrong: not a SQLite file,
    corrupt or truncated (``PRAGMA quick_check``, about 4 ms per MB), read-only (the file or
    its folder: SQLite writes a ``-wal`` file beside it), a directory, a folder that does not
    exist, or a SQLite file that is not a journal.
    """

    #: The columns every journal has had; a ``messages`` table without them is not a journal.
    _REQUIRED = frozenset({"key", "state", "id", "error", "retryable", "attempts", "updated"})

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(
                str(self.path) if self.path else "",
                isolation_level=None,
                check_same_thread=False,
                timeout=1.0,
            )
            self._open(db)
        except sqlite3.Error as exc:
            if db is not None:
                db.close()
            if _sqlite_error_name(exc) in ("SQLITE_BUSY", "SQLITE_LOCKED"):
                raise ConfigurationError(
                    f"journal {self.path} is in use by another run ({exc}); wait for it to finish"
                ) from None
            raise self._unusable(exc) from exc
        except JournalError:
            if db is not None:
                db.close()
            raise
        self._db = db

    def _open(self, db: sqlite3.Connection) -> None:
        # One run per journal at a time: two processes sending the same keys through one
        # journal would each think the other's keys unsent. The exclusive lock also spares
        # every commit the shared-memory index, a third of a commit's cost.
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        # Rows are ~100 bytes and every commit writes whole pages to the WAL: small pages
        # halve the bytes written per message. (Applies to new files; old ones keep theirs.)
        db.execute("PRAGMA page_size=1024")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("BEGIN EXCLUSIVE")
        db.execute("COMMIT")
        db.execute("PRAGMA synchronous=NORMAL")
        # A truncated or damaged file can open and read its schema fine and fail only on the
        # page a later query reaches, mid-send: every page is checked before anything is sent.
        problems = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise self._error(f"is corrupt or truncated: {'; '.join(problems)}")
        db.execute(
            "CREATE TABLE IF NOT EXISTS messages ("
            " key TEXT PRIMARY KEY, state TEXT NOT NULL, id INTEGER, error TEXT,"
            " retryable INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
            " updated REAL NOT NULL, data TEXT, run INTEGER NOT NULL DEFAULT 0,"
            " failure TEXT, digest TEXT, processed INTEGER NOT NULL DEFAULT 0, started REAL,"
            " lookup TEXT, candidates TEXT, reconciled INTEGER NOT NULL DEFAULT 0)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS runs (run INTEGER PRIMARY KEY AUTOINCREMENT,"
            " started REAL NOT NULL)"
        )
        columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
        missing = self._REQUIRED - columns
        if missing:
            raise self._error(
                "is a SQLite file but not a bulk journal: its messages table has no "
                f"{', '.join(sorted(missing))} column"
            )
        for name, declaration in _COLUMNS.items():
            if name not in columns:
                db.execute(f"ALTER TABLE messages ADD COLUMN {name} {declaration}")
                if name == "failure":  # before, ``retryable`` said it
                    db.execute(
                        "UPDATE messages SET failure = CASE retryable WHEN 1 THEN 'not_sent'"
                        " ELSE 'rejected' END WHERE state = 'failed'"
                    )
        # Reconciliation asks which conversation ids are already some key's result.
        db.execute("CREATE INDEX IF NOT EXISTS messages_by_id ON messages(id)")

    def _error(self, what: str) -> JournalError:
        error = JournalError(f"journal {self.path} {what}")
        error.path = str(self.path) if self.path else None
        return error

    def _unusable(self, exc: sqlite3.Error) -> JournalError:
        """The error for a journal SQLite could not open or use, saying what is wrong."""
        name = _sqlite_error_name(exc)
        path = self.path
        if path is None:
            what = "cannot be created in the temporary folder"
        elif path.is_dir():
            what = "is a directory"
        elif not path.parent.is_dir():
            what = f"cannot be created: its folder {path.parent} does not exist"
        elif name.startswith("SQLITE_READONLY") or (path.exists() and not os.access(path, os.W_OK)):
            what = "is read-only: a journal must be writable"
        elif not os.access(path.parent, os.W_OK) or (name == "SQLITE_CANTOPEN" and path.exists()):
            what = (
                f"cannot be written: its folder {path.parent} is read-only (SQLite keeps a -wal "
                "file beside the journal)"
            )
        elif name == "SQLITE_NOTADB":
            what = "is not a SQLite file (not a journal, or overwritten)"
        elif name == "SQLITE_CORRUPT":
            what = "is corrupt or truncated"
        else:
            what = "cannot be opened"
        return self._error(f"{what} ({exc})")

    def begin_run(self) -> int:
        cur = self._db.execute("INSERT INTO runs (started) VALUES (?)", (time.time(),))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def recover(self) -> int:
        cur = self._db.execute(
            "UPDATE messages SET state='uncertain', processed=?,"
            " error='the sending process stopped mid-request', updated=? WHERE state='sending'",
            (int(Processed.MAYBE), time.time()),
        )
        return cur.rowcount

    def get(self, key: str) -> JournalEntry | None:
        row = self._db.execute(
            "SELECT state, id, error, failure, run, digest, processed, started"
            " FROM messages WHERE key=?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        state, id_, error, failure, run, digest, processed, started = row
        return JournalEntry(state, id_, error, failure, run, digest, Processed(processed), started)

    def claim(self, key: str, run: int) -> None:
        self._db.execute("UPDATE messages SET run=? WHERE key=?", (run, key))

    def write(
        self, *, sending: Sequence[Sending] = (), settled: Sequence[Outcome] = (), run: int = 0
    ) -> None:
        now = time.time()
        try:
            self._db.execute("BEGIN")
            try:
                if sending:
                    self._db.executemany(
                        "INSERT INTO messages"
                        " (key, state, attempts, updated, run, digest, started, lookup)"
                        " VALUES (?, 'sending', 1, ?, ?, ?, ?, ?)"
                        " ON CONFLICT(key) DO UPDATE SET state='sending', attempts=attempts+1,"
                        " updated=excluded.updated, run=excluded.run, digest=excluded.digest,"
                        " started=excluded.started, lookup=excluded.lookup",
                        [(s.key, now, run, s.digest, now, s.lookup) for s in sending],
                    )
                if settled:
                    self._db.executemany(
                        "INSERT INTO messages (key, state, id, error, failure, retryable,"
                        " processed, updated, data, run, candidates, reconciled)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT(key) DO UPDATE SET state=excluded.state, id=excluded.id,"
                        " error=excluded.error, failure=excluded.failure,"
                        " retryable=excluded.retryable, processed=excluded.processed,"
                        " updated=excluded.updated, data=excluded.data, run=excluded.run,"
                        " candidates=excluded.candidates, reconciled=excluded.reconciled",
                        [
                            (
                                o.key,
                                o.outcome,
                                o.id,
                                o.error,
                                o.failure,
                                int(o.retryable),
                                int(o.processed),
                                now,
                                None if o.data is None else json.dumps(o.data),
                                run,
                                json.dumps(list(o.candidates)) if o.candidates else None,
                                int(o.reconciled),
                            )
                            for o in settled
                        ],
                    )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise JournalError(
                f"the bulk journal {self.path or '(temporary)'} could not be written: {exc}"
            ) from exc

    def sending(self, *keys: str, run: int = 0) -> None:
        """Mark keys as about to be sent, in one transaction (a WhatsApp batch is one request)."""
        self.write(sending=[Sending(key) for key in keys], run=run)

    def settle(self, *outcomes: Outcome, run: int = 0) -> None:
        self.write(settled=outcomes, run=run)

    def counts(self) -> dict[str, int]:
        return dict(
            self._db.execute("SELECT state, COUNT(*) FROM messages GROUP BY state").fetchall()
        )

    def uncertain(self) -> list[UncertainEntry]:
        cur = self._db.execute(
            "SELECT key, lookup, started, updated, processed, error FROM messages"
            " WHERE state='uncertain' ORDER BY started"
        )
        return [
            UncertainEntry(key, lookup, started, updated, Processed(processed), error)
            for key, lookup, started, updated, processed, error in cur
        ]

    def annotate(self, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        try:
            with self._db:
                self._db.executemany(
                    "UPDATE messages SET error=?, candidates=? WHERE key=? AND state='uncertain'",
                    [
                        (o.error, json.dumps(list(o.candidates)) if o.candidates else None, o.key)
                        for o in outcomes
                    ],
                )
        except sqlite3.Error as exc:
            raise JournalError(
                f"the bulk journal {self.path or '(temporary)'} could not be written: {exc}"
            ) from exc

    def taken_ids(self, ids: Iterable[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        batch = list(ids)
        for i in range(0, len(batch), 500):  # SQLite's limit on bound parameters
            chunk = batch[i : i + 500]
            marks = ",".join("?" * len(chunk))
            cur = self._db.execute(
                f"SELECT id, key FROM messages WHERE state='sent' AND id IN ({marks})",  # noqa: S608 - only ? marks
                chunk,
            )
            found.update(dict(cur.fetchall()))
        return found

    def sends_between(self, start: float, end: float) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM messages WHERE started BETWEEN ? AND ?", (start, end)
        ).fetchone()
        return int(row[0])

    def rows(self) -> list[dict[str, Any]]:
        """Every key's row, in key order."""
        return list(self.iter_rows())

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        """Every key's row, in key order, one at a time."""
        cur = self._db.execute(
            "SELECT key, state, id, error, failure, processed, data, candidates, reconciled"
            " FROM messages ORDER BY key"
        )
        for key, state, id_, error, failure, processed, data, candidates, reconciled in cur:
            yield {
                "key": key,
                "outcome": state,
                "id": id_,
                "error": error,
                "failure": failure,
                "retryable": state == "failed" and failure == "not_sent",
                "processed": Processed(processed).name.lower(),
                "data": None if data is None else json.loads(data),
                "candidates": [] if candidates is None else json.loads(candidates),
                "reconciled": bool(reconciled),
            }

    def close(self) -> None:
        """Close the file and release its lock (a ``with`` block does this too)."""
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
