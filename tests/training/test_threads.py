"""The thread setting (training/threads.py): explicit counts win, $OMP_NUM_THREADS next, else
the idle cores; the count used is recorded in the run."""

from __future__ import annotations

import os

import torch

from training import threads


def test_the_default_takes_omp_num_threads_else_the_idle_cores(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.default_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(threads, "busy_cores", lambda: 1.2)
    assert threads.default_threads() == 1  # one core busy with another job
    monkeypatch.setattr(threads, "busy_cores", lambda: 7.0)
    assert threads.default_threads() == 1  # never below one
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.1)
    assert threads.default_threads() == 2
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.6)
    assert threads.default_threads() == 2  # a blip of another process keeps both
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.8)
    assert threads.default_threads() == 1


def test_busy_cores_is_the_non_idle_share_of_proc_stat_over_the_window(monkeypatch):
    # 4 CPUs; over the window 400 jiffies passed, 100 of them idle: 3 cores busy.
    samples = iter([(1000, 600), (1400, 700)])
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    clock = iter([10.0, 10.5])  # this process used 0.5 s of CPU over the 1 s window
    monkeypatch.setattr(threads.time, "process_time", lambda: next(clock))
    assert threads.busy_cores(window_s=1.0) == 2.5  # 3 cores busy, half of one is ours
    # The live /proc/stat reading is a share of the machine's cores.
    monkeypatch.undo()
    assert 0.0 <= threads.busy_cores(window_s=0.05) <= (os.cpu_count() or 1)


def test_use_threads_sets_torch_and_returns_the_count():
    before = torch.get_num_threads()
    try:
        assert threads.use_threads(2) == 2 and torch.get_num_threads() == 2
        assert threads.use_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
