"""Which run directories the app may open: those under the root, named relative to it.

A run name comes from the URL (`?run=demo`), so it is untrusted: it must resolve (symlinks
followed) to a directory inside the root, and be a run `Run.open` accepts.
"""

from __future__ import annotations

from pathlib import Path

MAX_DEPTH = 3  # how deep under the root runs are looked for


def is_run_dir(path: Path) -> bool:
    from cocomix_lens.rundir import Run

    try:
        Run.open(path)
    except FileNotFoundError:
        return False
    return True


def find_runs(root: Path, max_depth: int = MAX_DEPTH) -> list[str]:
    """Run directories under `root` (the root itself included), as sorted relative names."""
    root = root.resolve()
    found: list[str] = []

    def walk(d: Path, depth: int) -> None:
        if is_run_dir(d):
            found.append(d.relative_to(root).as_posix() if d != root else ".")
            return  # a run's stage directories are not runs of their own
        if depth >= max_depth:
            return
        try:
            children = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return
        for child in children:
            if child.resolve().is_relative_to(root):
                walk(child, depth + 1)

    walk(root, 0)
    return found


def resolve_run(root: Path, name: str) -> Path:
    """The run directory `name` (relative to `root`); a one-line ValueError when `name` leaves
    the root or is not a run."""
    root = root.resolve()
    if not name or Path(name).is_absolute():
        raise ValueError(f"run {name!r} must be a directory name relative to the root {root}: "
                         "pick a run in the sidebar")
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"run {name!r} is outside the root {root}: pick a run in the sidebar")
    if not path.is_dir():
        raise FileNotFoundError(f"run directory {name!r} does not exist under {root}: pick a "
                                "run in the sidebar, or make it with 'cocomix-lens pipeline "
                                f"--out {path}'")
    if not is_run_dir(path):
        raise FileNotFoundError(f"{name!r} under {root} is not a run directory: make one with "
                                f"'cocomix-lens pipeline --out {path}'")
    return path
