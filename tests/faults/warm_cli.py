"""A warm `cocomix-lens` for the kill loops: one process imports what the commands import
(training.warm_imports.MODULES: torch, TransformerLens, SAE-Lens, the trainer, ...) once, then
forks a child per command, which runs `training.cli.main(argv)` and exits as
`python -m training.cli ARGV` would.

A kill loop starts the same command a dozen times and SIGKILLs most of them; a fresh process
spends ~6-8 s CPU importing before it writes a byte, so most kills landed in the import and
most of the loop's CPU went there. A forked child starts at the command's first line: every
kill lands in the command's own work, and the files it leaves are the files a fresh process
would leave. What a fork shares with its zygote that a fresh process would draw anew, it draws
anew (`random`'s and numpy's global seeds); the hash seed is the zygote's, so the kill loops
still run their uninterrupted reference run as a fresh process (another hash seed): a result
that depended on it would differ there.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

ZYGOTE = r"""
import importlib, json, os, sys
from training.warm_imports import MODULES
for name in MODULES:
    importlib.import_module(name)
import training.cli
print("ready", flush=True)
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        break
    print(pid, flush=True)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
else:
    sys.exit(0)
# the child: stdin and stdout on /dev/null, stderr to the file asked for, fresh entropy
null = os.open(os.devnull, os.O_RDWR)
err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.dup2(null, 0), os.dup2(null, 1), os.dup2(err, 2)
os.close(null), os.close(err)
import random
import numpy as np
random.seed()
np.random.seed()
sys.argv = ["cocomix-lens", *req["argv"]]
sys.exit(training.cli.main(req["argv"]))
"""


class Zygote:
    """The warm process; `start(argv, stderr)` forks one command (one at a time)."""

    def __init__(self, env: dict[str, str]):
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], env=env, cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        assert self.line(None) == "ready", "the warm cocomix-lens did not start"

    def line(self, timeout: float | None) -> str | None:
        """The zygote's next line, or None when `timeout` s pass first."""
        end = None if timeout is None else time.monotonic() + timeout
        fd, buf = self.proc.stdout.fileno(), b""
        while not buf.endswith(b"\n"):
            left = None if end is None else max(0.0, end - time.monotonic())
            if not buf and not select.select([fd], [], [], left)[0]:
                return None
            byte = os.read(fd, 1)
            assert byte, f"the warm cocomix-lens exited ({self.proc.wait()})"
            buf += byte
        return buf.decode().strip()

    def start(self, argv: list[str], stderr: Path) -> Forked:
        self.proc.stdin.write((json.dumps({"argv": argv, "stderr": str(stderr)}) + "\n")
                              .encode())
        return Forked(self, int(self.line(None)))

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


class Forked:
    """A forked command, as much of subprocess.Popen as the kill loops use."""

    def __init__(self, zygote: Zygote, pid: int):
        self.zygote, self.pid, self.returncode = zygote, pid, None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            line = self.zygote.line(timeout)
            if line is None:
                raise subprocess.TimeoutExpired(["cocomix-lens", str(self.pid)], timeout)
            self.returncode = int(line)
        return self.returncode

    def kill(self) -> None:
        """SIGKILL, unless it has ended (and been reaped: its pid may be another's by now)."""
        try:
            self.wait(timeout=0)
        except subprocess.TimeoutExpired:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


_zygotes: dict[str, Zygote] = {}


def zygote(env: dict[str, str]) -> Zygote:
    """This process's zygote for `env`, started on first use (and stopped by `close_all`,
    which tests/faults/conftest.py calls after each module, or at exit)."""
    key = json.dumps(env, sort_keys=True)
    if key not in _zygotes or _zygotes[key].proc.poll() is not None:
        _zygotes[key] = Zygote(env)
    return _zygotes[key]


def close_all() -> None:
    while _zygotes:
        _zygotes.popitem()[1].close()


atexit.register(close_all)
