"""Crash-safe file writes and content hashes used by the data pipeline.

Every file we publish goes through a temporary sibling, is fsync'ed and then moved into
place with `os.replace`, so a reader never sees half a shard or half a manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_CHUNK = 1 << 20


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of `path`; on clean exit fsync it and rename it onto `path`.

    On error the temporary file is removed and `path` is left untouched.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
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


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` (utf-8) to `path` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write `obj` as indented, key-sorted JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


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


def read_versioned_json(path: str | Path, version: int, *, missing: str,
                        fix: str) -> dict[str, Any]:
    """Read a JSON file carrying "format_version"; FileNotFoundError(`missing`) if absent,
    ValueError naming the versions and `fix` if it is of another format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(missing)
    blob = json.loads(path.read_text(encoding="utf-8"))
    found = blob.get("format_version")
    if found != version:
        raise ValueError(f"{path} has unknown format_version {found!r}, this code reads "
                         f"{version}; fix: {fix}")
    return blob
