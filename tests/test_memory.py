"""Memory stays bounded: bulk sends from a generator, and exports of big conversations.

Each measurement runs in a fresh process (tests/memory_probe.py) and reads its peak RSS, so
nothing else the test session imported or allocated counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from commbox_async.models import ObjectDetails

ROOT = Path(__file__).resolve().parents[1]


def start(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.memory_probe", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def result(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    value: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return value


@pytest.mark.skipif(sys.platform != "linux", reason="reads VmHWM from /proc")
def test_bulk_peak_rss_does_not_grow_with_the_number_of_messages(tmp_path: Path) -> None:
    # Both runs at once: the machine's two cores, half the wall time.
    small = start("bulk", "10000", str(tmp_path / "small.sqlite"))
    large = start("bulk", "100000", str(tmp_path / "large.sqlite"))
    small_result, large_result = result(small), result(large)
    assert small_result["counts"] == {"sent": 10_000}
    assert large_result["counts"] == {"sent": 100_000}
    # The generator is read as the sender goes, never ahead of it.
    assert large_result["max_lead"] <= 2 * 16 + 2
    growth = large_result["peak_rss_mb"] - small_result["peak_rss_mb"]
    assert growth < 30, (small_result, large_result)


@pytest.mark.skipif(sys.platform != "linux", reason="reads VmHWM from /proc")
def test_export_of_2000_conversations_of_200_children_stays_under_100_mb(tmp_path: Path) -> None:
    out = tmp_path / "export.jsonl"
    got = result(start("export", "2000", "200", str(out)))
    assert got["exported"] == 2000 and got["failed"] == 0, got
    assert got["peak_rss_mb"] < 100, got
    ids = set()
    with out.open() as fh:
        for line in fh:
            record = json.loads(line)
            ids.add(record["object_id"])
            if len(ids) % 500 == 1:  # decoding each would only repeat the same check
                conversation = ObjectDetails.from_wire(record["conversation"])
                assert conversation.object_id == record["object_id"]
                assert len(conversation.messages) == 200
    assert ids == set(range(10_000, 12_000))  # each conversation once, none lost


@pytest.mark.skipif(sys.platform != "linux", reason="reads VmRSS from /proc")
@pytest.mark.parametrize(
    ("kind", "per_body"),
    [
        # 200,000 never-seen activity types in 40 bodies (before: ~78 MB kept for good, each
        # value cached in the enum class)
        ("enums", 5000),
        # 1.6 million never-seen field names in 40 bodies, 20 new object shapes per body
        # (before: ~270 MB kept, in the key-normalising cache and the shape cache)
        ("keys", 40000),
    ],
)
def test_a_flood_of_never_seen_values_leaves_nothing_behind(kind: str, per_body: int) -> None:
    got = result(start("flood", kind, "40", str(per_body)))
    assert got["largest_body"] < 1024 * 1024  # each under the receivers' size cap
    assert got["retained_mb"] < 5, got
