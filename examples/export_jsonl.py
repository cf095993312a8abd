"""Export every conversation a stream had in a time window, with its messages, to JSON lines.

    COMMBOX_TOKEN=... python examples/export_jsonl.py --stream 532 --days 7 --out week.jsonl

One whole line per conversation. Run it again after an interruption and it skips what the file
already holds (a half-written last line is cut first); failures go to ``week.jsonl.errors.jsonl``
and are tried again on the next run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import anyio

from commbox_async import AsyncCommBox


async def main(stream_id: int | str, days: float, out: Path) -> int:
    end = int(time.time())
    start = end - int(days * 86400)
    async with AsyncCommBox() as cb:
        report = await cb.export.jsonl(
            out, stream_id=stream_id, start=start, end=end, concurrency=8, transcript=True
        )
    print(
        f"exported {report.exported}, already in the file {report.skipped}, "
        f"failed {report.failed} (see {report.errors_path})"
    )
    with out.open(encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    print(f"{out} holds {len(lines)} conversations: {sorted(x['object_id'] for x in lines)}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", required=True)
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--out", type=Path, default=Path("export.jsonl"))
    args = parser.parse_args()
    stream = int(args.stream) if args.stream.isdecimal() else args.stream
    sys.exit(anyio.run(main, stream, args.days, args.out))
