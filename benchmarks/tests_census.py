"""Count the test suite per file: collected pytest items, test functions and checks (assert
statements, `pytest.raises`, `*.assert_close`/`np.testing.assert_*` calls), so a restructuring
can show before and after that no test and no assertion went missing.

    python benchmarks/tests_census.py                # totals and one row per file
    python benchmarks/tests_census.py --totals       # the totals line only

Items come from `pytest --collect-only -q` (parametrised cases count one each); checks are
counted in the source with `ast`, over every `tests/**/*.py` (helpers included, because some
assertions live in shared helpers).
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
# Calls that fail a test by themselves: pytest.raises/warns and the assert_* family of
# torch.testing and numpy.testing.
CHECK_CALLS = ("raises", "warns", "assert_close", "assert_allclose", "assert_array_equal",
               "assert_equal", "assert_almost_equal", "assert_array_almost_equal")


def collected_items() -> Counter:
    """Collected pytest items per test file (path relative to the repo)."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "tests"],
                         capture_output=True, text=True, cwd=REPO)
    items = Counter(line.split("::")[0] for line in out.stdout.splitlines() if "::" in line)
    if not items or out.returncode != 0:
        sys.exit(f"pytest did not collect every test:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return items


def checks(path: Path) -> tuple[int, int, int]:
    """(test functions, assert statements, check calls) in one source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = sum(isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
                    for n in ast.walk(tree))
    asserts = sum(isinstance(n, ast.Assert) for n in ast.walk(tree))
    calls = sum(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                and n.func.attr in CHECK_CALLS for n in ast.walk(tree))
    return functions, asserts, calls


def census() -> list[tuple[str, int, int, int, int]]:
    """(file, items, test functions, asserts, check calls) for every tests/**/*.py file."""
    items = collected_items()
    rows = []
    for path in sorted(TESTS.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        rows.append((rel, items.get(rel, 0), *checks(path)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--totals", action="store_true", help="print the totals line only")
    args = parser.parse_args()
    rows = census()
    if not args.totals:
        for rel, n_items, n_functions, n_asserts, n_calls in rows:
            print(f"{rel:50s} {n_items:4d} items {n_functions:3d} functions "
                  f"{n_asserts:4d} asserts {n_calls:3d} calls")
    items, functions, asserts, calls = (sum(r[i] for r in rows) for i in (1, 2, 3, 4))
    print(f"total: {len(rows)} files, {items} test items, {functions} test functions, "
          f"{asserts} assert statements, {calls} raises/assert_* calls "
          f"({asserts + calls} checks)")


if __name__ == "__main__":
    main()
