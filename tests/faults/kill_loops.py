"""Kill loops of a CoCoMix training run (the concept-loss path): `loops` times, start
`cocomix-lens train --resume` and SIGKILL it at a random moment of its training `kills` times
(within 0.3 s after it saved 0, 2 or 4 more steps), let the last one finish, and compare
every byte of the final model and checkpoints with an uninterrupted run.

    OMP_NUM_THREADS=1 python tests/faults/kill_loops.py --loops 10 --kills 10     # make faults

Prints one line per loop and `identical N/loops`; exit code 1 if any loop differs or leaves a
temporary behind. The thread count is fixed (--threads 1): bitwise equality holds for the same
count (training/threads.py).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This folder (test_fault_loops) and tests/ (the shared helpers it imports), as pytest puts them.
FAULTS = Path(__file__).resolve().parent
sys.path[:0] = [str(FAULTS), str(FAULTS.parent)]
REPO = FAULTS.parents[1]

from test_fault_loops import ENV, assert_clean, files, loop_inputs  # noqa: E402

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


def saved_step(out: Path) -> int:
    """The newest checkpoint step on disk (-1: none yet)."""
    steps = [int(p.name[5:]) for p in (out / "checkpoints").glob("step_*")] if (
        out / "checkpoints").is_dir() else []
    return max(steps, default=-1)


def kill_once(argv: list[str], out: Path, rng: random.Random) -> int:
    """Start `argv`; SIGKILL it 0-0.3 s after it saved 0, 2 or 4 more steps (so the kill lands
    in a training step, an evaluation or a checkpoint write, at whatever load the machine
    has), or let it end; 1 if it was killed while running."""
    proc = subprocess.Popen([sys.executable, "-m", "training.cli", *argv], env=ENV, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = saved_step(out) + rng.choice((0, 2, 4))
    while proc.poll() is None and saved_step(out) < target:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.3))
    killed = proc.poll() is None
    if killed:
        proc.kill()
    proc.wait()
    return int(killed)


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
        same = 0
        for loop in range(args.loops):
            out, killed = tmp / f"hit{loop}", 0
            for _ in range(args.kills):
                if saved_step(out) >= MAX_STEPS:
                    break  # finished: later starts would only resume a finished run
                killed += kill_once(train_argv(shards, labels, out), out, rng)
            _run(train_argv(shards, labels, out))
            hit = weights(out)
            diff = sorted(k for k in ref.keys() | hit.keys() if ref.get(k) != hit.get(k))
            try:
                assert_clean(out)
                clean = True
            except AssertionError as err:
                clean, diff = False, diff + [f"left: {err}"]
            same += not diff and clean
            print(f"loop {loop}: {killed} kills landed, {'identical' if not diff else diff}",
                  flush=True)
        print(f"identical {same}/{args.loops} (kills per loop {args.kills}; an uninterrupted "
              f"run took {span:.1f} s)")
    return 0 if same == args.loops else 1


if __name__ == "__main__":
    sys.exit(main())
