"""Soak: long bulk runs under faults, and repeated SIGKILLs, checked key by key.

Marked slow and left out of the default run (a few minutes): ``nox -s soak`` or
``pytest -m slow``. ``COMMBOX_SOAK_N`` sets the number of messages (default 50,000).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from commbox_async.bulk import Journal
from commbox_async.testing import FakeCommBox

from .conftest import serve_in_thread
from .test_bulk import SENDER, check_invariants, messages

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

N = int(os.environ.get("COMMBOX_SOAK_N", "50000"))
ALL_FAULTS = ["500", "502", "503", "drop_before", "lost_after", "slow"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_soak_every_fault_then_resume_with_the_journal(tmp_path: Path) -> None:
    fake = FakeCommBox(fault_rate=0.10, seed=11, slow_seconds=0.002, faults=ALL_FAULTS)
    journal = tmp_path / "soak.sqlite"
    options = {"max_retries": 4, "initial_backoff": 0.001, "max_backoff": 0.005}
    async with fake.client(**options) as cb:
        first = await cb.bulk.send(messages(N), journal=journal, concurrency=64)
        outcomes = {o.key: o for o in first.outcomes}
        assert len(first.outcomes) == N
        check_invariants(fake, outcomes, N)
        # The second run retries only failed-but-retryable keys and resends nothing taken.
        before = Counter(o["message"] for o in fake.all_objects())
        second = await cb.bulk.send(messages(N), journal=journal, concurrency=64)
    retried = {o.key for o in second.outcomes if not o.earlier}
    assert retried == {k for k, o in outcomes.items() if o.outcome == "failed" and o.retryable}
    after = Counter(o["message"] for o in fake.all_objects())
    assert all(after[k] == before[k] for k in before)  # nothing already there was sent again
    assert all(count == 1 for count in after.values())
    with Journal(journal) as book:
        rows = {r["key"]: r for r in book.rows()}
    assert len(rows) == N
    for key, row in rows.items():
        if row["outcome"] == "sent":
            assert after[key] == 1
    assert all(rows[k]["outcome"] in ("sent", "uncertain") for k in after)


def test_soak_repeated_sigkill_then_completion(tmp_path: Path) -> None:
    n = max(2_000, N // 10)
    fake = FakeCommBox(fault_rate=0.1, seed=3, faults=["500", "503", "lost_after", "slow"])
    script = tmp_path / "sender.py"
    script.write_text(SENDER)
    journal = tmp_path / "journal.sqlite"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    rng = random.Random(7)
    with serve_in_thread(fake) as url:
        cmd = [sys.executable, str(script), url, str(journal), str(n)]
        for _ in range(5):
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE)
            time.sleep(rng.uniform(1.0, 3.0))
            if proc.poll() is not None:
                break
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        done = subprocess.run(cmd, env=env, capture_output=True, timeout=600)
        assert done.returncode == 0, done.stderr.decode()
    with Journal(journal) as book:
        rows = {r["key"]: r for r in book.rows()}
    assert len(rows) == n  # the journal accounts for every key
    in_fake = Counter(o["message"] for o in fake.all_objects())
    assert all(c == 1 for c in in_fake.values())  # at most once, across every kill
    assert all(rows[k]["outcome"] in ("sent", "uncertain") for k in in_fake)
    assert all(in_fake[k] == 1 for k, r in rows.items() if r["outcome"] == "sent")
