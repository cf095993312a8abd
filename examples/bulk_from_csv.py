"""Send one SMS conversation per row of a CSV, once, resumably.

    COMMBOX_TOKEN=... python examples/bulk_from_csv.py customers.csv --stream 532

Each row has ``key`` (unique: what makes a re-run skip it), ``phone`` and ``name``. The journal
(``send.sqlite`` by default) records every message before and after its request, so running the
same command again after a crash, Ctrl-C or ``kill -9`` sends only what was not sent. The exit
code is 0 when every row is sent, 3 when some may have been taken (uncertain: look before you
resend), 1 when some failed.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio

from commbox_async import AsyncCommBox, CommBoxError, NewObject
from commbox_async.bulk import BulkMessage, Outcome, Rejected


def messages(path: Path, stream_id: int | str) -> Iterator[BulkMessage | Rejected]:
    """The CSV's rows as messages, read lazily (a million rows cost no more memory than ten).
    A row that cannot be a message (a missing column, a phone number that is not one) is
    yielded as Rejected: the run records it as failed, names its line, and goes on."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        for row in reader:
            key = row.get("key")
            where = f"{path.name}:{reader.line_num}"
            if not key:  # the key is what a re-run skips a row by: never made up
                yield Rejected(key=f"line:{reader.line_num}", error=f"{where}: no key")
                continue
            if None in row or None in row.values():  # csv's marks of a short or long row
                yield Rejected(key=key, error=f"{where}: not as many fields as the header")
                continue
            try:
                yield BulkMessage(
                    key=key,
                    stream_id=stream_id,
                    payload=NewObject.sms(
                        user_stream_provider_id=row["phone"],
                        message=f"Hi {row['name']}, your order {key} has shipped.",
                    ),
                )
            except (KeyError, TypeError, ValueError, CommBoxError) as exc:
                why = f"missing column {exc}" if isinstance(exc, KeyError) else str(exc)
                yield Rejected(key=key, error=f"{where}: {why}")


def show(outcome: Outcome) -> None:
    if outcome.outcome != "sent":
        print(f"{outcome.key}: {outcome.outcome} {outcome.error or ''}", file=sys.stderr)


async def main(path: Path, stream_id: int | str, journal: Path, concurrency: int) -> int:
    async with AsyncCommBox() as cb:
        report = await cb.bulk.send(
            messages(path, stream_id), journal=journal, concurrency=concurrency, on_outcome=show
        )
    print(dict(sorted(report.counts.items())), f"({report.earlier} settled by an earlier run)")
    if report.counts.get("uncertain"):
        return 3
    return 1 if report.counts.get("failed") or report.counts.get("pending") else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--journal", type=Path, default=Path("send.sqlite"))
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    stream = int(args.stream) if args.stream.isdecimal() else args.stream
    sys.exit(anyio.run(main, args.csv, stream, args.journal, args.concurrency))
