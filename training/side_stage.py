"""The NTP student beside the teacher chain, in a second process.

The NTP student needs only the token shards (its windows are aligned as the label cache's
are: `training.label_sources.WindowsOnly`), so with 2 or more threads on CPU and `parallel`
on, it trains in a child process while this one runs teacher -> SAE -> labels, each side on
half the threads; the stages after get every thread back. Models this small use a second
thread poorly, so two one-thread processes finish both sooner than one on two threads. The
child writes the ntp stage's marker itself; the pipeline waits for it where the stage comes
in order, and kills it if a stage fails.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import signal
from typing import Any

log = logging.getLogger(__name__)

NAME = "ntp"  # the stage that runs beside the others
AFTER = "prepare"  # it starts once this stage is done (it reads the shards)
BESIDE = ("teacher", "sae", "labels")  # the stages it runs beside (on half the threads)


class SideStage:
    """The ntp stage running in a child process; `wait()` gives its stage record."""

    name, after = NAME, AFTER

    def __init__(self, threads: int, process: Any, conn: Any):
        self.threads, self.process, self.conn = threads, process, conn

    @classmethod
    def start(cls, ctx: Any, stop_after: str | None) -> SideStage | None:
        """Start the child when it pays: parallel on, CPU, >= 2 threads, the ntp stage to run
        and one of BESIDE still to run; else None (the stage runs in order, as before)."""
        import torch

        from training.pipeline import STAGES, stage_marker

        order, cfg = list(STAGES), ctx.cfg
        wanted = stop_after is None or order.index(stop_after) >= order.index(NAME)
        todo = [s for s in BESIDE if not stage_marker(ctx, s).is_file()]
        if not (cfg.parallel and cfg.device == "cpu" and (cfg.threads or 1) >= 2 and wanted
                and todo and not stage_marker(ctx, NAME).is_file()):
            return None
        half = cfg.threads // 2
        spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked threads
        parent, child = spawn.Pipe(duplex=False)
        # Each side's share goes into the config its trainers read (they set torch's threads
        # from it): else both sides ran every thread, 4 threads on 2 cores.
        child_ctx = dataclasses.replace(ctx, cfg=dataclasses.replace(
            cfg, progress=False, threads=cfg.threads - half))
        process = spawn.Process(target=_child, args=(child_ctx, cfg.threads - half, child),
                                name=f"cocomix-lens {NAME}", daemon=True)
        process.start()
        child.close()
        torch.set_num_threads(half)
        log.info("stage %s: training in process %d beside %s (%d + %d threads)", NAME,
                 process.pid, ", ".join(todo), half, cfg.threads - half)
        return cls(cfg.threads, process, parent)

    def narrowed(self, ctx: Any) -> Any:
        """`ctx` for the stages the parent runs while the child trains: half the threads."""
        return dataclasses.replace(ctx, cfg=dataclasses.replace(ctx.cfg,
                                                                threads=self.threads // 2))

    def wait(self) -> dict[str, Any]:
        """Block until the child is done; its stage record (or its error, raised here)."""
        import torch

        try:
            status, payload = self.conn.recv()
        except EOFError:
            status, payload = "error", f"exited with code {self.process.exitcode} (killed?)"
        self.process.join()
        torch.set_num_threads(self.threads)  # every thread back for the stages after
        if status != "ok":
            raise RuntimeError(f"stage {NAME}, trained in a second process, failed: {payload}; "
                               "fix: re-run the same command to resume it, or pass "
                               "--parallel false to train it in order")
        log.info("stage %s: done in %.1f s (beside the teacher chain)", NAME, payload["wall_s"])
        return {**payload, "skipped": False}

    def stop(self) -> None:
        """Kill the child if it still runs (a stage of the parent failed or was interrupted)."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=30)
        self.conn.close()


def _child(ctx: Any, threads: int, conn: Any) -> None:
    _die_with_parent()
    from training.pipeline import STAGES, run_stage
    from training.threads import use_threads

    use_threads(threads)
    try:
        conn.send(("ok", run_stage(ctx, NAME, STAGES[NAME])))
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which raises
        conn.send(("error", f"{type(err).__name__}: {' '.join(str(err).split())}"))
    finally:
        conn.close()


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (even by SIGKILL), so a killed
    pipeline leaves no trainer behind holding the ntp run's lock."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the daemon flag still ends it on exit
        pass
