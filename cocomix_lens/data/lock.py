"""Exclusive locks on output directories: one writer per run, shard or label directory.

    with DirLock(out):          # LockedError naming the holder's PID if another has it
        ...write into out...

The lock is `fcntl.flock` on `<dir>/.lock`, which holds the writer's PID. The kernel drops it
when the process exits, even on SIGKILL, so a crashed run never leaves a stale lock. Locks are
re-entrant within a process (the pipeline locks its run directory, the trainer inside it its
own). Platforms without `fcntl` run unlocked.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
_held: dict[Path, list[Any]] = {}  # resolved dir -> [fd, depth], this process's locks
_guard = threading.Lock()


class LockedError(RuntimeError):
    """Another process is writing into the directory."""


def holder_pid(directory: str | Path) -> int | None:
    """PID recorded in the directory's lock file (whether or not it is still held)."""
    try:
        return int((Path(directory) / LOCK_FILE).read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


class DirLock:
    """Context manager holding an exclusive lock on `directory` (created if missing)."""

    def __init__(self, directory: str | Path, what: str = "directory"):
        self.dir = Path(directory)
        self.what = what

    def __enter__(self) -> DirLock:
        self.dir.mkdir(parents=True, exist_ok=True)
        key = self.dir.resolve()
        with _guard:
            if key in _held:
                _held[key][1] += 1
                return self
            if fcntl is not None:
                _held[key] = [self._acquire(), 1]
        return self

    def __exit__(self, *exc: Any) -> None:
        key = self.dir.resolve()
        with _guard:
            entry = _held.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                # Unlink while still holding it: a waiter that opened the old file sees a
                # changed inode after locking and retries on the new one.
                (self.dir / LOCK_FILE).unlink(missing_ok=True)
                os.close(entry[0])

    def _acquire(self) -> int:
        path = self.dir / LOCK_FILE
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                pid = holder_pid(self.dir)
                who = f"PID {pid}" if pid else "another process"
                raise LockedError(f"{self.what} {self.dir} is in use by {who}; fix: wait for "
                                  f"it to finish (or stop it: kill {pid or 'PID'}), or choose "
                                  "another output directory") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return fd
            os.close(fd)  # the holder unlinked it as we opened it: lock the new file
