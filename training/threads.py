"""How many CPU threads torch uses: one setting (`system.threads`, pipeline `threads`,
`--threads`), resolved once per process and recorded in the run.

Results are bitwise reproducible for the same thread count only: a reduction split over two
threads adds in another order than over one. A default of "every core" oversubscribes a busy
machine (beside one other job, 2 threads on 2 cores ran the world preset ~7x slower than 1), so
the default takes the cores other processes leave idle at start.
"""

from __future__ import annotations

import logging
import math
import os
import time

log = logging.getLogger(__name__)


def default_threads() -> int:
    """$OMP_NUM_THREADS when set (an explicit choice), else the usable cores that other
    processes leave idle now, at least 1. A core counts as taken when other processes keep
    it at least 3/4 busy: a short blip of another process does not halve a whole run."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    return max(1, min(cores, cores - math.floor(busy_cores() + 0.25)))


def busy_cores(window_s: float = 0.5) -> float:
    """Cores that *other* processes keep busy: /proc/stat's non-idle time over `window_s`
    less this process's own (torch's OpenMP workers spin a while after a parallel op).
    Not the 1-minute load average: just after `pip install`, as in `make demo`, that still
    counts the finished install and gave the demo 1 thread of 2."""
    first, mine = _cpu_times(), time.process_time()
    if first is None:  # not Linux
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    time.sleep(window_s)
    second, mine = _cpu_times(), time.process_time() - mine
    total, idle = (b - a for a, b in zip(first, second))
    if total <= 0:
        return 0.0
    cores = os.cpu_count() or 1
    return max(0.0, cores * (1 - idle / total) - mine / window_s)


def _cpu_times() -> tuple[int, int] | None:
    """(total, idle + iowait) jiffies of all CPUs, from /proc/stat's first line."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields), fields[3] + (fields[4] if len(fields) > 4 else 0)


def use_threads(threads: int | None) -> int:
    """Set torch's intra-op threads to `threads` (None: `default_threads()`); returns it."""
    import torch  # here, not at the top: `cocomix-lens pipeline --help` must not import it

    n = default_threads() if threads is None else int(threads)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    log.info("torch uses %d CPU thread(s) (bitwise results need the same count)", n)
    return n
