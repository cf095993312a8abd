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
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .._exceptions import ConfigurationError, JournalError
from .._verdict import Processed
from ._backend import JournalBackend, JournalEntry, Sending, UncertainEntry
from ._types import FailureKind, Outcome, OutcomeKind

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
    "since": "REAL",
    "earlier_differs": "INTEGER NOT NULL DEFAULT 0",
}


#: What a journal file holds besides SQLite's own objects; anything else is another program's.
_OURS = frozenset({("table", "messages"), ("table", "runs"), ("index", "messages_by_id")})

_STATES = frozenset(("sending", *typing.get_args(OutcomeKind)))
_FAILURES = frozenset((None, *typing.get_args(FailureKind)))
_PROCESSED = {int(p): p for p in Processed}


def _number(value: Any) -> bool:
    return type(value) in (int, float)


# What every row a bulk send writes holds, column by column. A row read that breaks one was
# written by something else (the file is locked while a journal has it open), and nothing it
# says can be trusted: it is a JournalError naming the key, never a ValueError mid-send.
_VALID: dict[str, Callable[[Any], bool]] = {
    "state": _STATES.__contains__,
    "processed": lambda v: type(v) is int and v in _PROCESSED,
    "failure": _FAILURES.__contains__,
    "id": lambda v: v is None or type(v) is int,
    "run": lambda v: type(v) is int,
    "started": lambda v: v is None or _number(v),
    "since": lambda v: v is None or _number(v),
    "earlier_differs": lambda v: v in (0, 1),
    "updated": _number,
    "reconciled": lambda v: v in (0, 1),
    **{c: (lambda v: v is None or type(v) is str) for c in ("error", "digest", "lookup")},
}


def _cut(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


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
    exist, or a SQLite file that is not a journal (another program's: any table but the
    journal's own). A row no bulk send writes (an unknown state, a ``processed`` of 99:
    changed by something else while no journal had the file open) is a ``JournalError``
    naming its key when it is read (the send reads each key's row before sending it), and so
    is any later SQLite failure, saying what could not be done and why.
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
        # Never adopt another program's database (and add tables to it).
        foreign = [
            f"{kind} {name!r}"
            for kind, name in db.execute(
                "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite^_%' ESCAPE '^'"
            )
            if (kind, name) not in _OURS
        ]
        if foreign:
            more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
            raise self._error(
                f"is a SQLite file but not a commbox journal: it holds {foreign[0]}{more}, and a "
                "journal holds only its own messages and runs tables; give the bulk send a new file"
            )
        db.execute(
            "CREATE TABLE IF NOT EXISTS messages ("
            " key TEXT PRIMARY KEY, state TEXT NOT NULL, id INTEGER, error TEXT,"
            " retryable INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
            " updated REAL NOT NULL, data TEXT, run INTEGER NOT NULL DEFAULT 0,"
            " failure TEXT, digest TEXT, processed INTEGER NOT NULL DEFAULT 0, started REAL,"
            " lookup TEXT, candidates TEXT, reconciled INTEGER NOT NULL DEFAULT 0, since REAL,"
            " earlier_differs INTEGER NOT NULL DEFAULT 0)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS runs (run INTEGER PRIMARY KEY AUTOINCREMENT,"
            " started REAL NOT NULL)"
        )
        columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
        missing = self._REQUIRED - columns
        if missing:
            raise self._error(
                "is a SQLite file but not a commbox journal: its messages table has no "
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
                elif name == "earlier_differs":
                    # Before, a key sent again while uncertain kept only its last attempt:
                    # what an earlier one sent, and when, is not known.
                    db.execute(
                        "UPDATE messages SET earlier_differs = 1"
                        " WHERE state IN ('uncertain', 'sending') AND attempts > 1"
                    )

    def _bad_row(self, key: str, column: str, value: str, why: str = "") -> JournalError:
        return self._error(
            f"holds a row no bulk send writes (key {_cut(key)}: {column} = {_cut(value)}{why}): "
            "it was changed by something else. Restore the file, or start a new journal "
            "(which sends every key again)"
        )

    def _checked(self, key: str, **columns: Any) -> None:
        """Raise the JournalError for the first of ``columns`` (of ``key``'s row) that holds
        what no bulk send writes."""
        for column, value in columns.items():
            if not _VALID[column](value):
                raise self._bad_row(repr(key), column, repr(value))

    def _error(self, what: str) -> JournalError:
        error = JournalError(f"journal {self.path} {what}")
        error.path = str(self.path) if self.path else None
        return error

    def _failed(self, doing: str, exc: sqlite3.Error) -> JournalError:
        """The error for a SQLite failure after the journal was opened."""
        error = JournalError(
            f"the bulk journal {self.path or '(temporary)'} could not be {doing}: "
            f"{_sqlite_error_name(exc)}: {exc}"
        )
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
        try:
            cur = self._db.execute("INSERT INTO runs (started) VALUES (?)", (time.time(),))
        except sqlite3.Error as exc:
            raise self._failed("written", exc) from exc
        assert cur.lastrowid is not None
        return cur.lastrowid

    def recover(self) -> int:
        try:
            cur = self._db.execute(
                "UPDATE messages SET state='uncertain', processed=?,"
                " error='the sending process stopped mid-request', updated=?"
                " WHERE state='sending'",
                (int(Processed.MAYBE), time.time()),
            )
        except sqlite3.Error as exc:
            raise self._failed("written", exc) from exc
        return cur.rowcount

    def get(self, key: str) -> JournalEntry | None:
        try:
            row = self._db.execute(
                "SELECT state, id, error, failure, run, digest, processed, started"
                " FROM messages WHERE key=?",
                (key,),
            ).fetchone()
        except sqlite3.Error as exc:
            raise self._failed("read", exc) from exc
        if row is None:
            return None
        state, id_, error, failure, run, digest, processed, started = row
        self._checked(
            key,
            state=state,
            processed=processed,
            failure=failure,
            id=id_,
            run=run,
            started=started,
            digest=digest,
            error=error,
        )
        return JournalEntry(state, id_, error, failure, run, digest, _PROCESSED[processed], started)

    def claim(self, key: str, run: int) -> None:
        try:
            self._db.execute("UPDATE messages SET run=? WHERE key=?", (run, key))
        except sqlite3.Error as exc:
            raise self._failed("written", exc) from exc

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
                        " started=excluded.started, lookup=excluded.lookup,"
                        # An uncertain key sent again: its earlier attempts may have been
                        # taken, so reconciliation looks from the first one's start, and knows
                        # whether one of them sent another message than this attempt does.
                        " since=CASE WHEN state='uncertain'"
                        " THEN COALESCE(since, started, updated) END,"
                        " earlier_differs=CASE WHEN state='uncertain'"
                        " THEN (earlier_differs OR digest IS NOT excluded.digest) ELSE 0 END",
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
            raise self._failed("written", exc) from exc

    def sending(self, *keys: str, run: int = 0) -> None:
        """Mark keys as about to be sent, in one transaction (a WhatsApp batch is one request)."""
        self.write(sending=[Sending(key) for key in keys], run=run)

    def settle(self, *outcomes: Outcome, run: int = 0) -> None:
        self.write(settled=outcomes, run=run)

    def counts(self) -> dict[str, int]:
        try:
            counts = dict(
                self._db.execute("SELECT state, COUNT(*) FROM messages GROUP BY state").fetchall()
            )
            for state in counts.keys() - _STATES:
                (key,) = self._db.execute(
                    "SELECT key FROM messages WHERE state IS ? LIMIT 1", (state,)
                ).fetchone()
                raise self._bad_row(repr(key), "state", repr(state))
        except sqlite3.Error as exc:
            raise self._failed("read", exc) from exc
        return counts

    def uncertain(self) -> list[UncertainEntry]:
        try:
            rows = self._db.execute(
                "SELECT key, lookup, started, updated, processed, error, since,"
                " earlier_differs FROM messages WHERE state='uncertain' ORDER BY started"
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._failed("read", exc) from exc
        entries = []
        for key, lookup, started, updated, processed, error, since, differs in rows:
            self._checked(
                key,
                processed=processed,
                started=started,
                updated=updated,
                lookup=lookup,
                error=error,
                since=since,
                earlier_differs=differs,
            )
            entries.append(
                UncertainEntry(
                    key, lookup, started, updated, _PROCESSED[processed], error, since, differs == 1
                )
            )
        return entries

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
            raise self._failed("written", exc) from exc

    def taken_ids(self, ids: Iterable[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        batch = list(ids)
        try:
            # Built when reconciliation first asks, not kept up by every send (a fifth of
            # a message's journal cost); a journal that has it keeps it.
            self._db.execute("CREATE INDEX IF NOT EXISTS messages_by_id ON messages(id)")
        except sqlite3.Error as exc:  # a write (SQLITE_FULL, say), not a read
            raise self._failed("written (its id index)", exc) from exc
        try:
            for i in range(0, len(batch), 500):  # SQLite's limit on bound parameters
                chunk = batch[i : i + 500]
                marks = ",".join("?" * len(chunk))
                cur = self._db.execute(
                    f"SELECT id, key FROM messages WHERE state='sent' AND id IN ({marks})",  # noqa: S608 - only ? marks
                    chunk,
                )
                found.update(dict(cur.fetchall()))
        except sqlite3.Error as exc:
            raise self._failed("read", exc) from exc
        return found

    def sends_between(self, start: float, end: float) -> int:
        try:
            row = self._db.execute(
                "SELECT COUNT(*) FROM messages WHERE started BETWEEN ? AND ?", (start, end)
            ).fetchone()
        except sqlite3.Error as exc:
            raise self._failed("read", exc) from exc
        return int(row[0])

    def rows(self) -> list[dict[str, Any]]:
        """Every key's row, in key order."""
        return list(self.iter_rows())

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        """Every key's row, in key order, one at a time."""
        try:
            yield from self._iter_rows()
        except sqlite3.Error as exc:
            raise self._failed("read", exc) from exc

    def _iter_rows(self) -> Iterator[dict[str, Any]]:
        cur = self._db.execute(
            "SELECT key, state, id, error, failure, processed, data, candidates, reconciled"
            " FROM messages ORDER BY key"
        )
        for key, state, id_, error, failure, processed, data, candidates, reconciled in cur:
            self._checked(
                key,
                state=state,
                processed=processed,
                failure=failure,
                id=id_,
                error=error,
                reconciled=reconciled,
            )
            yield {
                "key": key,
                "outcome": state,
                "id": id_,
                "error": error,
                "failure": failure,
                "retryable": state == "failed" and failure == "not_sent",
                "processed": _PROCESSED[processed].name.lower(),
                "data": self._json(key, "data", data, None),
                "candidates": self._json(key, "candidates", candidates, []),
                "reconciled": bool(reconciled),
            }

    def _json(self, key: str, column: str, text: str | None, default: Any) -> Any:
        """A column holding JSON, decoded (only something other than a bulk send writes one
        that does not)."""
        if text is None:
            return default
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            raise self._bad_row(repr(key), column, repr(text), ", not JSON") from None
        if column == "candidates" and not isinstance(value, list):
            raise self._bad_row(repr(key), column, repr(text), ", not a JSON list")
        return value

    def close(self) -> None:
        """Close the file and release its lock (a ``with`` block does this too)."""
        try:
            self._db.close()
        except sqlite3.Error as exc:
            raise self._failed("closed", exc) from exc

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
