"""The reliability matrix's rows for writers: every command that writes a directory, under a
full disk (ENOSPC) and a read-only target (EROFS). Simulated in-process (`failing_writes`):
the tests run as root, whom a read-only mode does not stop."""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from matrix_verdicts import Row, refused

# errno -> (row name, the words the one-line error must hold)
WRITE_FAULTS = {errno.ENOSPC: ("full disk", "no space left"),
                errno.EROFS: ("read-only target", "read-only")}


def _under(path: Any, root: Path) -> bool:
    try:
        return Path(os.fsdecode(path)).resolve().is_relative_to(root.resolve())
    except (TypeError, ValueError, OSError):
        return False  # a file descriptor or an odd name: not ours to fail


@contextlib.contextmanager
def failing_writes(root: Path, code: int) -> Iterator[None]:
    """Every write under `root` fails with OSError(`code`): Python's open and os.open in a
    writing mode, safetensors' save_file, and (read-only only) creating directories."""
    from safetensors import SafetensorError

    def fail(path: Any) -> None:
        raise OSError(code, os.strerror(code), os.fsdecode(path))

    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def open_(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and _under(file, root):
            fail(file)
        return real_open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and _under(path, root):
            fail(path)
        return real_os_open(path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if code == errno.EROFS and _under(path, root):
            fail(path)
        return real_mkdir(path, *args, **kwargs)

    def save_file(tensors, filename, *args, **kwargs):  # safetensors' own wording of errno
        raise SafetensorError(f"Error while serializing: IoError(Os {{ code: {code}, kind: "
                              f"Other, message: \"{os.strerror(code)}\" }})")

    patched = [(builtins, "open", open_), (io, "open", open_), (os, "open", os_open),
               (os, "mkdir", mkdir)]
    patched += [(m, "save_file", save_file) for m in list(sys.modules.values())
                if getattr(m, "__name__", "").startswith(("training", "cocomix_lens"))
                and hasattr(m, "save_file")]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patched]
    try:
        for obj, name, new in patched:
            setattr(obj, name, new)
        yield
    finally:
        for obj, name, old in saved:
            setattr(obj, name, old)


def world_pipeline(world: Any) -> Path:
    """A finished micro pipeline run on the synthetic world (a world run: steer-bench scores
    with its oracle), built once per world under its root; rows write into copies of it."""
    from matrix_verdicts import cli

    out = world.root / "world_pipeline"
    if not (out / "summary.json").is_file():
        code, err, _ = cli(pipeline_argv(out))
        assert code == 0, err
    return out


def pipeline_argv(out: Path) -> list[str]:
    """A micro pipeline on 600 world documents (n_ctx 128: room for an opening, a cue and a
    continuation in steer-bench)."""
    return ["pipeline", "--preset", "micro", "--out", str(out), "--quiet", "--corpus", "world",
            "--max-docs", "600", "--data.vocab_size", "1024", "--student.overrides.n_ctx", "128"]


def run_copy(world: Any, tmp: Path, drop: str) -> Path:
    """A copy of the world's pipeline run without `drop` (what the writer makes) and the
    checkpoints (most of its bytes, read by no writer here)."""
    import shutil

    run = tmp / "run"
    shutil.copytree(world_pipeline(world), run, ignore=shutil.ignore_patterns(
        drop, "checkpoints", ".lock"))
    return run


# Every writer: (its command line on a run copy, the directory it writes). Small settings: each
# runs in seconds on the micro run.
def run_writers() -> dict[str, tuple[Callable[[Path], list[str]], Callable[[Path], Path]]]:
    return {
        "catalog": (lambda r: ["catalog", "--run", str(r), "--quiet"],
                    lambda r: r / "catalogue"),
        "steer-eval": (lambda r: ["steer-eval", "--run", str(r), "--densest", "2",
                                  "--screen-samples", "2", "--sweep-samples", "2", "--samples",
                                  "2", "--out", str(r / "steering")],
                       lambda r: r / "steering"),
        "steer-bench": (lambda r: ["steer-bench", "--run", str(r), "--quick", "--topics", "sea",
                                   "--no-progress", "--out", str(r / "bench")],
                        lambda r: r / "bench"),
        "study": (lambda r: ["study", "--run", str(r), "--seeds", "1", "--budget", "1024",
                             "--arms", "cocomix", "--eval-points", "1", "--steer-samples", "0",
                             "--probe-tokens", "256", "--quiet"],
                  lambda r: r / "study"),
        "pipeline": (lambda r: pipeline_argv(r / "p"), lambda r: r / "p"),
    }


def writer_rows(world: Any) -> list[Row]:
    """Every writer (prepare, labels, train; catalog, steer-eval, steer-bench, study and
    pipeline on a micro world run) writing under each write fault: one line naming the fault
    and the fix, and no temporary left behind."""
    from helpers_faults import labels_argv, train_argv

    from cocomix_lens.data.files import is_temporary

    def on_out(argv_for: Callable[[Path], list[str]]):
        def where(tmp: Path) -> tuple[list[str], Path]:
            return argv_for(tmp / "out"), tmp / "out"
        return where

    def on_run(name: str):
        argv_for, out_of = run_writers()[name]

        def where(tmp: Path) -> tuple[list[str], Path]:
            if name == "pipeline":  # a new --out
                return argv_for(tmp), out_of(tmp)
            run = run_copy(world, tmp, out_of(tmp / "run").name)
            return argv_for(run), out_of(run)
        return where

    writers: dict[str, Callable[[Path], tuple[list[str], Path]]] = {
        "prepare": on_out(lambda out: ["prepare", "--corpus", "text", "--path",
                                       str(world.root / "corpus.txt"), "--separator", "\\n\\n",
                                       "--vocab-size", "300", "--out", str(out)]),
        "labels": on_out(lambda out: labels_argv(world, out)),
        "train": on_out(lambda out: train_argv(world, out, "--objective", "ntp", "--max-steps",
                                               "3")),
    }
    writers.update({name: on_run(name) for name in run_writers()})

    def case(where: Callable[[Path], tuple[list[str], Path]], code: int):
        def run(tmp):
            argv, out = where(tmp)
            with failing_writes(out, code):
                verdict = refused(argv, WRITE_FAULTS[code][1], fold=True)
            left = [p.name for p in out.rglob("*") if is_temporary(p.name)] if (
                out.is_dir()) else []
            return verdict if not left else f"silently wrong: left {left}"
        return run

    return [Row("writers", f"{name} {_target(name)} on a {what}", case(where, code))
            for name, where in writers.items() for code, (what, _) in WRITE_FAULTS.items()]


def _target(name: str) -> str:
    return {"catalog": "RUN/catalogue", "study": "RUN/study"}.get(name, "--out")


# ---- rows: SIGKILL at random times -------------------------------------------------------------
# Keys whose values are wall times, speeds or what this invocation did (steer-bench: cells
# generated, not read back; pipeline: stages skipped as done): they differ between any two
# runs, killed or not.
VOLATILE = {"wall_s", "total_wall_s", "build_s", "train_s", "cpu_s", "tokens_per_s",
            "finished_at", "started_at", "computed", "skipped"}


def _comparable(root: Path) -> dict[str, Any]:
    """Every file under `root` as compared after a kill: JSON, JSON lines and YAML parsed, with
    wall times and speeds (VOLATILE) dropped; markdown and HTML (renders of that JSON, with
    times and plotly's random element ids) only as present and non-empty; anything else byte
    for byte. (Both runs are made at the same path: files name paths, and hashes of them.)"""
    import json

    import yaml

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in VOLATILE}
        return [strip(v) for v in node] if isinstance(node, list) else node

    out: dict[str, Any] = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name == ".lock":
            continue
        name, text = str(p.relative_to(root)), p.read_bytes()
        if p.suffix in (".md", ".html"):
            out[name] = bool(text.strip())
        elif p.suffix == ".json":
            out[name] = strip(json.loads(text))
        elif p.suffix == ".jsonl":
            out[name] = [strip(json.loads(line)) for line in text.splitlines() if line.strip()]
        elif p.suffix == ".yaml":
            out[name] = strip(yaml.safe_load(text))
        else:
            out[name] = text
    return out


def kill_rows(world: Any, kills: int = 2) -> list[Row]:
    """Each writer of a run (catalog, steer-eval, steer-bench, study, pipeline) SIGKILLed
    `kills` times at random moments of an uninterrupted run's time, then re-run to the end:
    the same files as the uninterrupted run (`_comparable`), and no temporary, lock or
    half-written checkpoint left (test_fault_loops.kill_loop and assert_clean: prepare,
    labels and train have their own loops there)."""
    import shutil

    from test_fault_loops import assert_clean, kill_loop
    from test_fault_loops import run as run_to_end

    def case(name: str, seed: int):
        argv_for, out_of = run_writers()[name]

        def run(tmp):
            work = tmp / "w"  # the uninterrupted run, then (removed) the killed one, here

            def fresh() -> Path:
                work.mkdir()
                return work if name == "pipeline" else run_copy(world, work, out_of(tmp).name)

            base = fresh()
            span = run_to_end(argv_for(base))
            ref = _comparable(out_of(base))
            shutil.rmtree(work)
            base = fresh()
            kill_loop(argv_for(base), base, kills, span, seed)
            try:
                assert_clean(base)
            except AssertionError as err:
                return f"silently wrong: left {err}"
            hit = _comparable(out_of(base))
            differ = sorted(k for k in ref.keys() | hit.keys() if ref.get(k) != hit.get(k))
            return "correct" if ref and not differ else f"silently wrong: differ {differ[:4]}"
        return run

    return [Row("writers: SIGKILL", f"{name} killed {kills}x at random times, then re-run",
                case(name, seed)) for seed, name in enumerate(run_writers(), start=10)]
