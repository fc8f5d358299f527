"""How many CPU threads torch uses: one setting (`system.threads`, pipeline `threads`,
`--threads`), resolved once per process and recorded in the run.

Results are bitwise reproducible for the same thread count only: a reduction split over two
threads adds in another order than over one. A default of "every core" oversubscribes a busy
machine (beside one other job, 2 threads on 2 cores ran the world preset ~7x slower than 1), so
the default takes the cores the load leaves idle.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def default_threads() -> int:
    """$OMP_NUM_THREADS when set (an explicit choice), else usable cores minus the 1-minute
    load average, at least 1."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    busy = round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    return max(1, min(cores, cores - busy))


def use_threads(threads: int | None) -> int:
    """Set torch's intra-op threads to `threads` (None: `default_threads()`); returns it."""
    import torch  # here, not at the top: `cocomix-lens pipeline --help` must not import it

    n = default_threads() if threads is None else int(threads)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    log.info("torch uses %d CPU thread(s) (bitwise results need the same count)", n)
    return n
