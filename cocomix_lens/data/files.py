"""Crash-safe file writes and content hashes used by the data pipeline.

Every file we publish goes through a temporary sibling, is fsync'ed and then moved into
place with `os.replace`, so a reader never sees half a shard or half a manifest.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

TOKENIZER_FILE = "tokenizer.json"
"""The tokenizer's file name in a shard directory and in a saved model directory."""

_CHUNK = 1 << 20
TMP_MARK = ".tmp."  # atomic_open writes `.<name>.tmp.<pid>` beside its target


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of `path`; on clean exit fsync it and rename it onto `path`.

    On error the temporary file is removed and `path` is left untouched.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    encoding = None if "b" in mode else "utf-8"
    try:
        with open(tmp, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def is_temporary(name: str) -> bool:
    """True for a temporary file `atomic_open` writes (left behind only by a killed writer)."""
    head, mark, pid = name.rpartition(TMP_MARK)
    return name.startswith(".") and bool(mark) and pid.isdigit()


def remove_temporaries(directory: str | Path) -> int:
    """Delete the temporaries killed writers left in `directory`; returns how many. Call it
    only while holding the directory's lock (cocomix_lens.data.lock): then none is live."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    stale = [p for p in directory.iterdir() if p.is_file() and is_temporary(p.name)]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def fsync_path(path: str | Path) -> None:
    """Flush a file or a directory (after a rename into it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` (utf-8) to `path` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write `obj` as indented, key-sorted strict JSON (`strict_json`) atomically."""
    atomic_write_text(path, strict_json(obj, indent=2, sort_keys=True) + "\n")


def strict_json(obj: Any, **kwargs: Any) -> str:
    """`json.dumps` that strict parsers accept: NaN and ±inf (also numpy floats) become null,
    numpy scalars plain numbers. kwargs go to json.dumps."""
    return json.dumps(_finite(obj), allow_nan=False, **kwargs)


def _finite(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # numpy / torch scalar
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex sha256 of the canonical (key-sorted, compact) JSON form of `obj`."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CorruptFileError(ValueError):
    """A file exists but does not parse (torn by a crash, edited by hand, or another format)."""


def read_json(path: str | Path, fix: str) -> Any:
    """Parse a JSON file; CorruptFileError naming the file, the position and `fix`."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptFileError(f"{path} is not valid JSON ({err}); fix: {fix}") from None


def read_versioned_json(path: str | Path, version: int, *, missing: str,
                        fix: str) -> dict[str, Any]:
    """Read a JSON file carrying "format_version"; FileNotFoundError(`missing`) if absent,
    CorruptFileError if it does not parse, ValueError naming the versions and `fix` if it is
    of another format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(missing)
    blob = read_json(path, fix)
    found = blob.get("format_version") if isinstance(blob, dict) else None
    if found != version:
        raise ValueError(f"{path} has unknown format_version {found!r}, this code reads "
                         f"{version}; fix: {fix}")
    return blob
