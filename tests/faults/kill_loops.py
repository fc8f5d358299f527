"""Kill loops of a CoCoMix training run (the concept-loss path): `loops` times, start
`cocomix-lens train --resume` and SIGKILL it `kills` times, each at a random moment within the
time an uninterrupted run takes (a kill that came after the run had finished is taken back and
drawn again: test_fault_loops.kill_once; the killed runs fork from a warm process, warm_cli),
let the last one finish, and compare every byte of the final model and checkpoints with an
uninterrupted run (a fresh process).

    OMP_NUM_THREADS=1 python tests/faults/kill_loops.py --loops 10 --kills 10     # make faults

Prints one line per loop and `L loops x K kills: N/L bitwise, M kills landed`; exit code 1 if
any loop differs or leaves a temporary behind. The thread count is fixed (--threads 1): bitwise
equality holds for the same count (training/threads.py).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The repository first (tests/ has folders named like its packages: tests/training would
# shadow `training` as a namespace package, since the editable install's finder comes after
# sys.path), then this folder (test_fault_loops) and tests/ (the shared helpers), as
# `python -m pytest` from the repository puts them.
FAULTS = Path(__file__).resolve().parent
REPO = FAULTS.parents[1]
sys.path[:0] = [str(REPO), str(FAULTS), str(FAULTS.parent)]

from test_fault_loops import ENV, assert_clean, files, kill_loop, loop_inputs  # noqa: E402

MAX_STEPS = 30


def build_inputs(root: Path) -> tuple[Path, Path]:
    """Shards and a label cache (teacher + SAE attribution labels) under root."""
    shards = loop_inputs(root)
    labels = root / "labels"
    _run(["labels", "--data", str(shards), "--teacher", str(root / "teacher"), "--sae",
          str(root / "sae"), "--out", str(labels), "--k", "2", "--window", "16"])
    return shards, labels


def train_argv(shards: Path, labels: Path, out: Path) -> list[str]:
    return ["train", "--objective", "cocomix", "--data", str(shards), "--labels", str(labels),
            "--out", str(out), "--resume", "--max-steps", str(MAX_STEPS), "--threads", "1",
            "--data.seq_len", "16", "--data.batch_size", "4", "--model.d_model", "32",
            "--model.n_layers", "2", "--model.n_heads", "2", "--model.n_ctx", "32",
            "--model.insert_layer", "1", "--model.concept_top_k", "4", "--concept.k_attr", "2",
            "--logging.progress", "false", "--logging.eval_every", "5",
            "--logging.eval_batches", "1", "--checkpoint.every", "2"]


def _run(argv: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "training.cli", *argv], env=ENV, cwd=REPO,
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    return time.perf_counter() - t0


def weights(root: Path) -> dict[str, bytes]:
    """The model and every checkpoint's tensors and state (wall times excluded)."""
    return {k: v for k, v in files(root).items()
            if k.endswith(".safetensors") or k.endswith("index.json")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", type=int, default=10)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="kill_loops_") as tmp:
        tmp = Path(tmp)
        shards, labels = build_inputs(tmp)
        span = _run(train_argv(shards, labels, tmp / "ref"))
        ref = weights(tmp / "ref")
        same = landed = 0
        for loop in range(args.loops):
            out = tmp / f"hit{loop}"
            killed = kill_loop(train_argv(shards, labels, out), out, args.kills, span,
                               seed=rng.randrange(2**31))
            hit = weights(out)
            diff = sorted(k for k in ref.keys() | hit.keys() if ref.get(k) != hit.get(k))
            try:
                assert_clean(out)
                clean = True
            except AssertionError as err:
                clean, diff = False, diff + [f"left: {err}"]
            same += not diff and clean
            landed += killed
            print(f"loop {loop}: {killed} kills landed, {'identical' if not diff else diff}",
                  flush=True)
        print(f"{args.loops} loops x {args.kills} kills: {same}/{args.loops} bitwise, {landed} "
              f"kills landed (each at a random moment of an uninterrupted run: at most the "
              f"{span:.1f} s a fresh process took; a kill drawn after its run finished was drawn "
              "again)")
    return 0 if same == args.loops else 1


if __name__ == "__main__":
    sys.exit(main())
