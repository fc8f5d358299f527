"""Start-up time of `cocomix-lens` beside the bare imports it cannot avoid.

    .venv/bin/python benchmarks/bench_startup.py            # best of 3 fresh processes each

Targets (issue 23): `--help`, `--version` and argument errors under 1 s (they import neither
torch nor TransformerLens); every other command within 1 s of `import torch, transformer_lens`
(the row "every command's modules" imports what all commands together import).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "training.cli"]
PY = [sys.executable, "-c"]

# (label, argv): each is started as a fresh process.
CASES = [
    ("python (nothing imported)", [*PY, "pass"]),
    ("import torch", [*PY, "import torch"]),
    ("import torch, transformer_lens", [*PY, "import torch, transformer_lens"]),
    ("import cocomix_lens", [*PY, "import cocomix_lens"]),
    ("from cocomix_lens import CoCoMixModel, Run",
     [*PY, "from cocomix_lens import CoCoMixModel, Run"]),
    ("every command's modules", [*PY, "import training.warm_imports as w, importlib; "
                                      "[importlib.import_module(m) for m in w.MODULES]"]),
    ("cocomix-lens --help", [*CLI, "--help"]),
    ("cocomix-lens --version", [*CLI, "--version"]),
    ("cocomix-lens nope (usage error)", [*CLI, "nope"]),
    ("cocomix-lens pipeline --help", [*CLI, "pipeline", "--help"]),
    ("cocomix-lens train --help", [*CLI, "train", "--help"]),
    ("cocomix-lens pipeline --out (usage error)", [*CLI, "pipeline", "--out"]),
]


def seconds(argv: list[str], repeats: int) -> float:
    """Best wall time of `repeats` fresh processes (the least disturbed by other load)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=False)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="processes per row (best is shown)")
    ap.add_argument("--run", help="also time `generate` and `concepts` on this run directory")
    args = ap.parse_args()
    cases = list(CASES)
    if args.run:
        cases += [("cocomix-lens generate (1 token)", [*CLI, "generate", "--run", args.run,
                                                       "--prompt", "The", "--max-new-tokens",
                                                       "1"]),
                  ("cocomix-lens concepts --top 1", [*CLI, "concepts", "--run", args.run,
                                                     "--top", "1"])]
    rows = [(label, seconds(argv, args.repeats)) for label, argv in cases]
    base = dict(rows)["import torch, transformer_lens"]
    print(f"{'':44} {'wall s':>7} {'vs torch+TL':>11}")
    for label, s in rows:
        print(f"{label:44} {s:7.2f} {s - base:+11.2f}")


if __name__ == "__main__":
    main()
