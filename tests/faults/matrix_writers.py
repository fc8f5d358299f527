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


def writer_rows(world: Any) -> list[Row]:
    """prepare, labels and train writing their --out under each write fault: one line naming
    the fault and the fix, and no temporary left behind."""
    from helpers_faults import labels_argv, train_argv

    from cocomix_lens.data.files import is_temporary

    writers: dict[str, Callable[[Path], list[str]]] = {
        "prepare": lambda out: ["prepare", "--corpus", "text", "--path",
                                str(world.root / "corpus.txt"), "--separator", "\\n\\n",
                                "--vocab-size", "300", "--out", str(out)],
        "labels": lambda out: labels_argv(world, out),
        "train": lambda out: train_argv(world, out, "--objective", "ntp", "--max-steps", "3"),
    }

    def case(argv_for: Callable[[Path], list[str]], code: int):
        def run(tmp):
            out = tmp / "out"
            with failing_writes(out, code):
                verdict = refused(argv_for(out), WRITE_FAULTS[code][1], fold=True)
            left = [p.name for p in out.rglob("*") if is_temporary(p.name)] if (
                out.is_dir()) else []
            return verdict if not left else f"silently wrong: left {left}"
        return run

    return [Row("writers", f"{name} --out on a {what}", case(argv_for, code))
            for name, argv_for in writers.items() for code, (what, _) in WRITE_FAULTS.items()]
