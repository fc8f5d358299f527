"""The reliability matrix: every numeric flag and setting, every file reader, and the
scenarios of the reliability issues, each run and given a verdict.

    python tests/faults/reliability_matrix.py --write docs/reliability_matrix.md     # make faults

Verdicts: `correct` (did the right thing), `clear error` (exit 2 and ONE line naming the
thing at fault and the fix, or a one-line library exception), `vague error` (an error, but
several lines or not naming what it should), `traceback`, `silently wrong` (exit 0 where a
refusal was due, or a wrong result). tests/faults/test_reliability_matrix.py asserts every row is
`correct` or `clear error`. The rows live in matrix_numbers_files.py, matrix_scenarios.py,
matrix_writers.py and matrix_app.py; their verdicts in matrix_verdicts.py.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# The repository first (tests/training would otherwise shadow `training`: see
# kill_loops.py), then this folder (helpers_faults) and tests/ (test_bounds, the shared
# helpers), as `python -m pytest` from the repository puts them.
FAULTS = Path(__file__).resolve().parent
for folder in (FAULTS.parent, FAULTS, FAULTS.parents[1]):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from matrix_app import app_rows  # noqa: E402
from matrix_numbers_files import bound_rows, file_rows  # noqa: E402
from matrix_scenarios import scenario_rows  # noqa: E402
from matrix_verdicts import GOOD, Row, kind, markdown, run_rows  # noqa: E402
from matrix_writers import kill_rows, writer_rows  # noqa: E402

__all__ = ["GOOD", "Row", "all_rows", "bound_rows", "file_rows", "kill_rows", "kind",
           "run_rows", "scenario_rows", "writer_rows"]


# ---- the table ----------------------------------------------------------------------------------
class _Factory:
    def __init__(self, root: Path):
        self.root, self.n = root, 0

    def mktemp(self, name: str) -> Path:
        self.n += 1
        path = self.root / f"{name}{self.n}"
        path.mkdir(parents=True)
        return path


def all_rows(world: Any) -> list[Row]:
    return (bound_rows() + file_rows(world) + scenario_rows(world) + writer_rows(world)
            + kill_rows(world))


def main() -> int:
    import tempfile

    from helpers_faults import build_world

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", help="write the markdown table here")
    ap.add_argument("--kill-log", help="append the kill-loop figure from this log (default: "
                    "keep the one the --write file holds)")
    ap.add_argument("--no-app", action="store_true", help="skip the app rows (a micro run)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="matrix_") as tmp:
        world = build_world(_Factory(Path(tmp)))
        rows = all_rows(world)
        if not args.no_app:
            from helpers_app import build_root

            (Path(tmp) / "app").mkdir()
            rows += app_rows(build_root(Path(tmp) / "app"))
        rows = run_rows(rows, Path(tmp) / "rows")
    extra = ""
    if args.kill_log and Path(args.kill_log).is_file():
        last = Path(args.kill_log).read_text().strip().splitlines()[-1]
        extra = (f"**Kill loops** (`OMP_NUM_THREADS=1 python tests/faults/kill_loops.py --loops 10 "
                 f"--kills 10`, CoCoMix objective): {last}")
    elif args.write and Path(args.write).is_file():  # the loops not re-run: their last figure
        extra = _kill_figure(Path(args.write).read_text())
    text = markdown(rows, extra)
    if args.write:
        Path(args.write).write_text(text)
    counts = Counter(kind(r.verdict) for r in rows)
    print(", ".join(f"{k} {v}" for k, v in counts.most_common()), f"of {len(rows)} rows")
    for r in rows:
        if kind(r.verdict) not in GOOD:
            print(f"  {r.area} | {r.case} | {r.verdict}")
    return 0 if all(kind(r.verdict) in GOOD for r in rows) else 1


def _kill_figure(table: str) -> str:
    """The kill-loop paragraph of a table written before (the loops take an hour; a table
    regenerated without them keeps the figure they last measured), or ""."""
    start = table.find("**Kill loops**")
    return "" if start < 0 else table[start:].split("\n\n")[0]


if __name__ == "__main__":
    sys.exit(main())
