"""A journal holds only what a bulk send wrote, or it is refused with a JournalError.

Before (found by the outsider review): a SQLite file of another program was adopted (the
journal's tables added to it, its own left alone); a row changed by something else
(``processed=99``, an unknown state) raised ``ValueError`` in the middle of a send, or was
reported as an outcome no send has (``{"bogus": 1}``); and every method but ``write`` and
``annotate`` let ``sqlite3`` errors out as they were.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import commbox_async.bulk.journal as journal_module
from commbox_async import JournalError, NewObject
from commbox_async.bulk import BulkMessage, Journal, Outcome
from commbox_async.bulk._lookup import lookup_for
from commbox_async.testing import FakeCommBox


def messages(n: int) -> list[BulkMessage]:
    return [
        BulkMessage(
            key=f"k{i}",
            stream_id=532,
            payload=NewObject.sms(user_stream_provider_id=f"97250{i:07d}", message=f"m{i}"),
        )
        for i in range(n)
    ]


def send(path: Path, n: int, fake: FakeCommBox | None = None) -> Any:
    fake = fake or FakeCommBox()

    async def main() -> Any:
        async with fake.client() as cb:
            return await cb.bulk.send(messages(n), journal=path, concurrency=1)

    return anyio.run(main)


def sql(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


@pytest.mark.parametrize(
    "schema",
    [
        ["CREATE TABLE users (id INTEGER, name TEXT)", "INSERT INTO users VALUES (1, 'x')"],
        ["CREATE VIEW v AS SELECT 1"],
        # a journal's tables, and one more of another program's
        [
            "CREATE TABLE messages (key TEXT PRIMARY KEY, state TEXT NOT NULL, id INTEGER,"
            " error TEXT, retryable INTEGER NOT NULL DEFAULT 0,"
            " attempts INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL)",
            "CREATE TABLE orders (n INTEGER)",
        ],
    ],
    ids=["a table", "a view", "a journal's table and another"],
)
def test_another_programs_database_is_refused_and_left_as_it_was(
    schema: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "app.sqlite"
    sql(path, *schema)
    db = sqlite3.connect(path)
    before = db.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()
    db.close()
    with pytest.raises(JournalError, match="not a commbox journal") as info:
        Journal(path)
    assert str(path) in str(info.value) and info.value.path == str(path)
    db = sqlite3.connect(path)
    assert db.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall() == before
    db.close()


def test_a_journal_of_this_and_earlier_versions_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    # The first version's table, with one row in each state it wrote.
    sql(
        path,
        "CREATE TABLE messages (key TEXT PRIMARY KEY, state TEXT NOT NULL, id INTEGER,"
        " error TEXT, retryable INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
        " updated REAL NOT NULL)",
        "INSERT INTO messages (key, state, id, updated) VALUES ('k0', 'sent', 7, 1.5)",
        "INSERT INTO messages (key, state, retryable, updated) VALUES ('k1', 'failed', 1, 2)",
        "INSERT INTO messages (key, state, updated) VALUES ('k2', 'uncertain', 3)",
    )
    send(path, 4)  # k1 failed "not sent" is sent again, k2 stays uncertain, k3 is new
    with Journal(path) as book:
        assert book.counts() == {"sent": 3, "uncertain": 1}
        assert [r["failure"] for r in book.rows()] == [None] * 4


def test_a_messages_fingerprint_is_the_one_earlier_versions_wrote() -> None:
    """Journals keep fingerprints across versions: a fingerprint computed another way (key
    order, separators, escaping) would make every key of an existing journal read as changed,
    and none of them would be sent again. These values were written by the first version."""
    from commbox_async import NewChild

    new = BulkMessage(
        key="k",
        stream_id=532,
        payload=NewObject.sms(user_stream_provider_id="972500000000", message="héllo ✓"),
    )
    child = BulkMessage(
        key="c",
        stream_id="532",
        object_id=77,
        payload=NewChild.from_agent(
            message="hi",
            user_identity=5,
            user_stream_provider_id="972500000000",
            user_stream_provider_type=2,
        ),
    )
    assert new.digest() == "1a220528c6edcc12e408846dd6ce6c2b"
    assert child.digest() == "21f090a4609bda4c7b3f6ef05135a694"


# (the change, the column the error names)
TAMPERED: dict[str, tuple[str, str]] = {
    "processed=99": ("processed = 99", "processed = 99"),
    "processed='maybe'": ("processed = 'maybe'", "processed = 'maybe'"),
    "state='bogus'": ("state = 'bogus'", "state = 'bogus'"),
    "failure='bogus'": ("state = 'failed', failure = 'bogus'", "failure = 'bogus'"),
    "id='abc'": ("id = 'abc'", "id = 'abc'"),
    "run='x'": ("run = 'x'", "run = 'x'"),
    "started='yesterday'": ("started = 'yesterday'", "started = 'yesterday'"),
    "digest=blob": ("digest = x'00ff'", "digest = b'"),
    "error=blob": ("error = x'00ff'", "error = b'"),
}


def _tampered(tmp_path: Path, change: str, state: str = "sent") -> Path:
    path = tmp_path / "send.sqlite"
    send(path, 5)
    sql(path, f"UPDATE messages SET state = '{state}' WHERE key = 'k3'")
    sql(path, f"UPDATE messages SET {change} WHERE key = 'k3'")
    return path


@pytest.mark.parametrize("case", TAMPERED)
def test_a_tampered_row_stops_the_send_at_its_key_typed(case: str, tmp_path: Path) -> None:
    change, shown = TAMPERED[case]
    path = _tampered(tmp_path, change)
    fake = FakeCommBox()
    with pytest.raises(JournalError, match="holds a row no bulk send writes") as info:
        send(path, 8, fake)  # k0..k4 settled earlier, k3 tampered with, k5..k7 new
    message = str(info.value)
    assert str(path) in message and "key 'k3'" in message and shown in message
    assert fake.all_objects() == []  # k0-k2 were settled earlier; nothing after k3 started


# What each reader reads, beyond get() (which reads every column a send decides by): which
# of the changes it must refuse, and for a row in which state (None: any).
REFUSED_BY: dict[str, tuple[str | None, set[str]]] = {
    "rows": (None, {"processed=99", "processed='maybe'", "state='bogus'", "failure='bogus'",
                    "id='abc'", "error=blob"}),
    "uncertain": ("uncertain", {"processed=99", "processed='maybe'", "started='yesterday'",
                                "error=blob"}),
    "counts": (None, {"state='bogus'"}),
}  # fmt: skip


@pytest.mark.parametrize("case", TAMPERED)
@pytest.mark.parametrize("state", ["sent", "uncertain"])
def test_a_tampered_row_is_a_journal_error_from_every_reader(
    case: str, state: str, tmp_path: Path
) -> None:
    change, shown = TAMPERED[case]
    path = _tampered(tmp_path, change, state)
    with Journal(path) as book:
        with pytest.raises(JournalError) as info:
            book.get("k3")
        assert "key 'k3'" in str(info.value) and shown in str(info.value)
        for name, (in_state, refused) in REFUSED_BY.items():
            read = getattr(book, name)
            if in_state in (None, state) and case in refused:
                with pytest.raises(JournalError, match=f"key 'k3': {shown}"):
                    read()
            else:
                read()  # what it does not read does not concern it


@pytest.mark.parametrize(
    ("column", "text"),
    [("data", "{not json"), ("candidates", "["), ("candidates", '{"a": 1}'), ("data", "[" * 5000)],
)
def test_json_columns_that_do_not_hold_json_are_journal_errors(
    column: str, text: str, tmp_path: Path
) -> None:
    path = tmp_path / "send.sqlite"
    send(path, 2)
    db = sqlite3.connect(path)
    db.execute(f"UPDATE messages SET {column} = ? WHERE key = 'k1'", (text,))
    db.commit()
    db.close()
    with Journal(path) as book, pytest.raises(JournalError, match=f"key 'k1': {column} = "):
        book.rows()


JOURNAL_CALLS: dict[str, Callable[[Journal], Any]] = {
    "begin_run": lambda b: b.begin_run(),
    "recover": lambda b: b.recover(),
    "get": lambda b: b.get("k"),
    "claim": lambda b: b.claim("k", 1),
    "write": lambda b: b.write(settled=[Outcome(key="k", outcome="sent", id=1)]),
    "sending": lambda b: b.sending("k"),
    "settle": lambda b: b.settle(Outcome(key="k", outcome="sent", id=1)),
    "counts": lambda b: b.counts(),
    "uncertain": lambda b: b.uncertain(),
    "annotate": lambda b: b.annotate([Outcome(key="k", outcome="uncertain")]),
    "taken_ids": lambda b: b.taken_ids([1, 2]),
    "sends_between": lambda b: b.sends_between(0, 1),
    "rows": lambda b: b.rows(),
    "iter_rows": lambda b: next(b.iter_rows(), None),
}


@pytest.mark.parametrize("call", JOURNAL_CALLS)
def test_every_sqlite_failure_of_a_journal_is_a_journal_error(call: str, tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    book = Journal(path)
    book.close()  # every statement now fails in SQLite (ProgrammingError)
    with pytest.raises(JournalError, match=r"could not be (read|written)") as info:
        JOURNAL_CALLS[call](book)
    assert str(path) in str(info.value) and "closed database" in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.Error)


@pytest.mark.parametrize("call", JOURNAL_CALLS)
def test_a_disk_failure_mid_run_is_a_journal_error(call: str, tmp_path: Path) -> None:
    class FailingConnection:
        """A connection whose every statement fails as a dying disk's would."""

        def execute(self, *args: Any) -> Any:
            raise sqlite3.OperationalError("disk I/O error")

        executemany = execute

        def __enter__(self) -> FailingConnection:
            return self

        def __exit__(self, *exc_info: object) -> None:
            pass

        def close(self) -> None:
            pass

    book = Journal(tmp_path / "j.sqlite")
    real = book._db
    book._db = FailingConnection()  # type: ignore[assignment]
    try:
        with pytest.raises(JournalError, match="disk I/O error"):
            JOURNAL_CALLS[call](book)
    finally:
        real.close()


def test_a_write_that_fails_midway_leaves_none_of_it_and_the_journal_usable(
    tmp_path: Path,
) -> None:
    """JournalBackend.write's promise: all of it is written, or none of it. The disk fails
    after the "sending" rows went in, before the settled ones: neither is on record, and the
    journal goes on with the next write."""
    from commbox_async.bulk import Sending

    path = tmp_path / "j.sqlite"
    book = Journal(path)
    real = book._db

    class SecondStatementFails:
        statements = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def executemany(self, sql: str, rows: Any) -> Any:
            SecondStatementFails.statements += 1
            if SecondStatementFails.statements == 2:
                raise sqlite3.OperationalError("disk I/O error")
            return real.executemany(sql, rows)

    book._db = SecondStatementFails()  # type: ignore[assignment]
    with pytest.raises(JournalError, match=r"could not be written: .*disk I/O error"):
        book.write(sending=[Sending("a")], settled=[Outcome(key="b", outcome="sent", id=1)])
    book._db = real
    assert (book.get("a"), book.get("b")) == (None, None)
    book.settle(Outcome(key="c", outcome="sent", id=2))
    book.close()
    with Journal(path) as again:
        assert again.counts() == {"sent": 1}


def test_reconciling_a_key_whose_lookup_is_not_what_a_send_wrote(tmp_path: Path) -> None:
    # Before: RecursionError from json.loads (a lookup nested 100,000 deep).
    path = tmp_path / "send.sqlite"
    send(path, 3)
    sql(path, "UPDATE messages SET state = 'uncertain', lookup = '" + "[" * 100_000 + "'")
    fake = FakeCommBox()

    async def main() -> Any:
        async with fake.client() as cb:
            return await cb.bulk.reconcile(path, settle_after=0)

    report = anyio.run(main)
    assert report.examined == 3
    with Journal(path) as book:
        assert book.counts() == {"uncertain": 3}
        assert {e.error for e in book.uncertain()} == {
            "the journal holds no record of what was sent (an earlier version wrote it)"
        }


# -- the exact error for each reason a journal cannot be used ---------------------------------


def sqlite_error(message: str, name: str | None = None) -> sqlite3.Error:
    exc = sqlite3.OperationalError(message)
    if name is not None:
        exc.sqlite_errorname = name  # what Python 3.11+ sets from SQLite's result code
    return exc


@pytest.mark.parametrize(
    ("exc", "name"),
    [
        (sqlite_error("Database Is LOCKED"), "SQLITE_BUSY"),
        (sqlite_error("attempt to write a READONLY database"), "SQLITE_READONLY"),
        (sqlite_error("database disk image is Malformed"), "SQLITE_CORRUPT"),
        (sqlite_error("file is Not A Database"), "SQLITE_NOTADB"),
        (sqlite_error("Unable To Open database file"), "SQLITE_CANTOPEN"),
        (sqlite_error("no such table: keys"), "SQLITE_ERROR"),
        (sqlite_error("database is locked", "SQLITE_IOERR_WRITE"), "SQLITE_IOERR_WRITE"),
    ],
)
def test_a_sqlite_errors_name_is_its_own_or_read_from_its_message(
    exc: sqlite3.Error, name: str
) -> None:
    assert journal_module._sqlite_error_name(exc) == name


def test_a_journal_that_cannot_be_opened_says_why_and_where(tmp_path: Path) -> None:
    def refusal(path: Path) -> str:
        with pytest.raises(JournalError) as raised:
            Journal(path)
        assert raised.value.path == str(path)
        return str(raised.value)

    assert refusal(tmp_path) == f"journal {tmp_path} is a directory (unable to open database file)"
    missing = tmp_path / "no" / "j.sqlite"
    assert refusal(missing) == (
        f"journal {missing} cannot be created: its folder {missing.parent} does not exist "
        "(unable to open database file)"
    )
    garbage = tmp_path / "g.sqlite"
    garbage.write_bytes(b"not sqlite " * 1000)
    assert refusal(garbage) == (
        f"journal {garbage} is not a SQLite file (not a journal, or overwritten) "
        "(file is not a database)"
    )


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("SQLITE_READONLY_DBMOVED", "is read-only: a journal must be writable"),
        (
            "SQLITE_CANTOPEN",
            "cannot be written: its folder {folder} is read-only (SQLite keeps a -wal file "
            "beside the journal)",
        ),
        ("SQLITE_NOTADB", "is not a SQLite file (not a journal, or overwritten)"),
        ("SQLITE_CORRUPT", "is corrupt or truncated"),
        ("SQLITE_FULL", "cannot be opened"),
    ],
)
def test_each_sqlite_refusal_of_an_existing_journal_is_named(
    name: str, what: str, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        error = journal._unusable(sqlite_error("boom", name))
    assert str(error) == f"journal {path} {what.format(folder=tmp_path)} (boom)"


def test_a_temporary_journal_that_cannot_be_created_says_so() -> None:
    with Journal(None) as journal:
        error = journal._unusable(sqlite_error("disk I/O error", "SQLITE_IOERR"))
    assert str(error) == "journal None cannot be created in the temporary folder (disk I/O error)"
    assert error.path is None


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("k" * 58, "'" + "k" * 58 + "'"),  # its repr is 60 characters: shown whole
        ("k" * 59, "'" + "k" * 56 + "..."),  # 61: cut to 57 and an ellipsis
        ("k" * 500, "'" + "k" * 56 + "..."),
    ],
)
def test_a_tampered_row_is_named_exactly_with_a_long_key_cut(
    key: str, shown: str, tmp_path: Path
) -> None:
    path = tmp_path / "send.sqlite"
    with Journal(path) as book:
        book.settle(Outcome(key=key, outcome="sent", id=1))
    sql(path, "UPDATE messages SET processed = 99")
    with Journal(path) as book, pytest.raises(JournalError) as info:
        book.get(key)
    assert str(info.value) == (
        f"journal {path} holds a row no bulk send writes (key {shown}: processed = 99): it "
        "was changed by something else. Restore the file, or start a new journal (which sends "
        "every key again)"
    )
    assert info.value.path == str(path)


class _LockedConnection:
    """A connection whose every statement fails as a journal locked by another writer's."""

    def execute(self, *args: Any) -> Any:
        raise sqlite3.OperationalError("database is locked")

    executemany = execute

    def close(self) -> None:
        pass


@pytest.mark.parametrize("kept", [True, False])
def test_a_failure_after_opening_names_the_journal_the_doing_and_the_sqlite_error(
    kept: bool, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite"
    book = Journal(path if kept else None)
    real = book._db
    book._db = _LockedConnection()  # type: ignore[assignment]
    try:
        with pytest.raises(JournalError) as info:
            book.sending("k")
    finally:
        real.close()
    where = str(path) if kept else "(temporary)"
    assert str(info.value) == (
        f"the bulk journal {where} could not be written: SQLITE_BUSY: database is locked"
    )
    assert info.value.path == (str(path) if kept else None)


def test_an_index_that_cannot_be_built_is_named_as_a_write(tmp_path: Path) -> None:
    """Reconciliation builds the id index on its first question: on a full disk that write
    fails, and the error says so (it once said the journal could not be read)."""
    from commbox_async.bulk import Sending

    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        run = journal.begin_run()
        journal.write(sending=[Sending(f"k{i}", "d") for i in range(3000)], run=run)
        (pages,) = journal._db.execute("PRAGMA page_count").fetchone()
        journal._db.execute(f"PRAGMA max_page_count = {pages}")
        expected = r"could not be written \(its id index\): SQLITE_FULL"
        with pytest.raises(JournalError, match=expected) as info:
            journal.taken_ids([1])
    assert info.value.path == str(path)


# -- a journal from before since / earlier_differs (found by the outside review) ---------------

_STREAM = 532
TO = "972500000001"

# The messages table as 371e5e0 (the release before `since` / `earlier_differs`) created it.
OLD_SCHEMA = (
    "CREATE TABLE messages ("
    " key TEXT PRIMARY KEY, state TEXT NOT NULL, id INTEGER, error TEXT,"
    " retryable INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
    " updated REAL NOT NULL, data TEXT, run INTEGER NOT NULL DEFAULT 0,"
    " failure TEXT, digest TEXT, processed INTEGER NOT NULL DEFAULT 0, started REAL,"
    " lookup TEXT, candidates TEXT, reconciled INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE runs (run INTEGER PRIMARY KEY AUTOINCREMENT, started REAL NOT NULL)",
)


def _sms_a(text: str) -> BulkMessage:
    payload = NewObject.sms(user_stream_provider_id=TO, message=text)
    return BulkMessage(key="a", stream_id=_STREAM, payload=payload)


def _old_journal(path: Path, resent: BulkMessage, *, first: float, second: float) -> None:
    """What 371e5e0 left for key "a": sent at ``first`` (taken, its answer lost), then sent
    again while uncertain (resend_uncertain=True) as ``resent`` at ``second``, refused with a
    503, and kept uncertain ("sent again while uncertain ..."). The old schema keeps only the
    second attempt's digest, lookup and start (attempts = 2)."""
    db = sqlite3.connect(path)
    for statement in OLD_SCHEMA:
        db.execute(statement)
    db.execute("INSERT INTO runs (started) VALUES (?), (?)", (first, second))
    db.execute(
        "INSERT INTO messages (key, state, error, attempts, updated, run, digest, processed,"
        " started, lookup) VALUES ('a', 'uncertain', ?, 2, ?, 2, ?, 1, ?, ?)",
        (
            "sent again while uncertain, and failed this time (ServiceUnavailableError: 503); "
            "the earlier attempt may have been taken",
            second + 0.01,
            resent.digest(),
            second,
            lookup_for(resent, stamp=False).to_json(),
        ),
    )
    db.commit()
    db.close()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("first_text", "hours_between"),
    [("Hello a", 0.0), ("Hello a", 15.0)],
    ids=["resent-with-another-text", "resent-same-text-a-day-later"],
)
async def test_a_journal_from_before_since_never_calls_a_key_resent_while_uncertain_not_taken(
    tmp_path: Path, first_text: str, hours_between: float
) -> None:
    """An uncertain key the previous release sent again while uncertain (attempts = 2) has no
    record of its first attempt once migrated (since NULL, earlier_differs 0): reconcile looks
    only for the last attempt's text, from its start, finds nothing and calls the key "not
    taken", and the next plain send sends it again, though the first attempt was taken.
    Expected: a migrated uncertain key with more than one attempt is never "not taken"."""
    journal = tmp_path / "old.sqlite"
    now = time.time()
    second = now - 600.0
    first = second - 1.0 - hours_between * 3600
    resent = _sms_a("Hello again" if hours_between == 0 else first_text)
    _old_journal(journal, resent, first=first, second=second)
    fake = FakeCommBox()
    fake.add_conversation(_STREAM, message=first_text, user_stream_provider_id=TO, created=first)
    async with fake.client() as cb:
        report = await cb.bulk.reconcile(journal, settle_after=0)
        with Journal(journal) as book:
            row = {r["key"]: r for r in book.rows()}["a"]
        again = await cb.bulk.send([resent], journal=journal)
    assert len(fake.all_objects()) == 1, "the key was sent twice: once taken, once again"
    assert report.not_taken == 0, row
    assert row["outcome"] == "uncertain"
    assert again.outcomes[0].earlier
