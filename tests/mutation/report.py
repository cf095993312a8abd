"""Score a ``mutmut run`` (``nox -s mutation``) against the list of equivalent mutants.

Reads mutmut's results under ``mutants/``, prints the score (killed / non-equivalent), and
lists every mutant that survived (or that no test reached) and is not in
``tests/mutation/equivalent.toml`` with its diff. Exits 1 below the goal (90%) or when such an
unexplained survivor exists: each one needs a test that kills it, or an entry saying why it is
equivalent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import tomllib

GOAL = 0.90
ROOT = Path(__file__).resolve().parents[2]
KILLED = {1, 3, 36, 24, -24, 152, 255, 37}  # failed tests, pytest errors, timeouts


def main() -> int:
    equivalent = tomllib.loads((Path(__file__).parent / "equivalent.toml").read_text())
    explained = {entry["mutant"]: entry["why"] for entry in equivalent.get("mutant", [])}
    exits: dict[str, int | None] = {}
    for meta in sorted((ROOT / "mutants").rglob("*.meta")):
        exits.update(json.loads(meta.read_text())["exit_code_by_key"])
    if not exits:
        print("no mutmut results under mutants/: run `mutmut run` first")
        return 1
    states = Counter("killed" if code in KILLED else "survived" for code in exits.values())
    survivors = sorted(name for name, code in exits.items() if code not in KILLED)
    unexplained = [name for name in survivors if name not in explained]
    stale = sorted(set(explained) - set(exits))
    considered = len(exits) - len([s for s in survivors if s in explained])
    score = states["killed"] / considered if considered else 1.0
    print(f"mutants: {len(exits)}, killed: {states['killed']}, survived: {states['survived']}")
    print(f"equivalent (listed with why): {len(survivors) - len(unexplained)}")
    print(f"score: {states['killed']}/{considered} non-equivalent = {score:.1%} (goal {GOAL:.0%})")
    for name in unexplained:
        print(f"\nUNEXPLAINED SURVIVOR {name} (exit {exits[name]}):")
        diff = subprocess.run(["mutmut", "show", name], capture_output=True, text=True)
        print(diff.stdout.strip())
    for name in stale:
        print(f"listed as equivalent but no longer generated: {name}")
    return 0 if score >= GOAL and not unexplained else 1


if __name__ == "__main__":
    sys.exit(main())
