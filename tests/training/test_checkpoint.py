"""Checkpoints round-trip bitwise, prune to last N + best, and survive a crash mid-save."""

import json
import random

import numpy as np
import pytest
import torch

from training import checkpoint as ckpt_mod
from training.checkpoint import Checkpoint, CheckpointManager, restore_rng


def _trained(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8),
                                torch.nn.Linear(8, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.95))
    for _ in range(3):
        model(torch.randn(5, 4)).square().mean().backward()
        opt.step()
        opt.zero_grad()
    return model, opt


def _save(mgr: CheckpointManager, step: int, metric=None, seed: int = 0):
    model, opt = _trained(seed)
    state = {"scheduler": {"last_epoch": step}, "sampler": {"step": step}, "tokens": 10 * step}
    return mgr.save(Checkpoint(step, model.state_dict(), opt.state_dict(), state), metric)


def test_roundtrip_is_bitwise_and_restores_rng(tmp_path):
    mgr = CheckpointManager(tmp_path, keep_last=2)
    model, opt = _trained()
    torch.manual_seed(123)
    np.random.seed(5)
    random.seed(7)
    mgr.save(Checkpoint(7, model.state_dict(), opt.state_dict(), {"tokens": 70}))
    want = (torch.rand(3), np.random.rand(2), random.random())
    ck = mgr.load()
    assert ck.step == 7 and ck.state["tokens"] == 70
    for k, v in model.state_dict().items():
        assert torch.equal(ck.model[k], v)
    fresh_model, fresh_opt = _trained(seed=1)
    fresh_opt.load_state_dict(ck.optimizer)
    a, b = opt.state_dict(), fresh_opt.state_dict()
    for i in a["state"]:
        for slot in a["state"][i]:
            assert torch.equal(a["state"][i][slot], b["state"][i][slot])
    assert a["param_groups"][0]["betas"] == tuple(b["param_groups"][0]["betas"])
    restore_rng(ck.state["rng_tensors"], ck.state["rng"])
    got = (torch.rand(3), np.random.rand(2), random.random())
    assert torch.equal(want[0], got[0]) and np.array_equal(want[1], got[1]) and want[2] == got[2]


def test_keeps_last_n_and_best(tmp_path):
    mgr = CheckpointManager(tmp_path, keep_last=2, keep_best=True)
    for step, metric in zip(range(1, 6), [5.0, 3.0, 4.0, None, 7.0]):
        _save(mgr, step, metric)
    dirs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert dirs == ["step_00000002", "step_00000004", "step_00000005"]
    idx = json.loads((tmp_path / "index.json").read_text())
    assert idx["latest"] == "step_00000005" and idx["best"]["name"] == "step_00000002"
    assert mgr.best() == tmp_path / "step_00000002"
    assert mgr.load(mgr.best()).step == 2


def test_crash_midway_through_a_save_leaves_previous_checkpoint_loadable(tmp_path, monkeypatch):
    mgr = CheckpointManager(tmp_path, keep_last=1)
    _save(mgr, 3)
    real, calls = ckpt_mod.write_tensors, []

    def dying_writer(path, tensors):  # writes the model file, then "loses power"
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated kill during save")
        real(path, tensors)

    monkeypatch.setattr(ckpt_mod, "write_tensors", dying_writer)
    with pytest.raises(KeyboardInterrupt):
        _save(mgr, 6, seed=1)
    monkeypatch.undo()
    assert mgr.latest() == tmp_path / "step_00000003"
    ck = mgr.load()
    assert ck.step == 3 and ck.state["tokens"] == 30
    assert not list(tmp_path.glob(".tmp-*")) and not (tmp_path / "step_00000006").exists()


def test_sigkill_leftovers_are_ignored_and_cleaned(tmp_path):
    mgr = CheckpointManager(tmp_path, keep_last=2)
    _save(mgr, 3)
    half = tmp_path / ".tmp-step_00000006-deadbeef"  # what a kill -9 mid-save leaves
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"\x00" * 10)
    assert mgr.load().step == 3
    mgr.clean_temporaries()
    assert not half.exists()


def test_loading_never_unpickles(tmp_path, monkeypatch):
    mgr = CheckpointManager(tmp_path)
    _save(mgr, 1)

    def no_pickle(*a, **k):
        raise AssertionError("torch.load called")

    monkeypatch.setattr(torch, "load", no_pickle)
    assert mgr.load().step == 1
    files = sorted(p.name for p in (tmp_path / "step_00000001").iterdir())
    assert files == ["model.safetensors", "optim.safetensors", "state.json"]


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        CheckpointManager(tmp_path).load()
    with pytest.raises(ValueError, match="keep_last"):
        CheckpointManager(tmp_path, keep_last=0)


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_kill_debris_is_removed_by_the_next_save_and_start(tmp_path):
    mgr = CheckpointManager(tmp_path, keep_last=2, keep_best=False)
    for step in (1, 2, 3):
        _save(mgr, step)
    pid = _dead_pid()
    (tmp_path / f".index.json.tmp.{pid}").write_text("{half")  # a kill inside atomic_open
    (tmp_path / ".tmp-step_00000004-1234abcd").mkdir()  # a kill inside save
    orphan = tmp_path / "step_00000001"  # a kill after the index dropped it, before rmtree
    orphan.mkdir()
    (orphan / "state.json").write_text("{}")
    mgr.clean_temporaries()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json", "step_00000002",
                                                          "step_00000003"]
    (tmp_path / f".index.json.tmp.{pid}").write_text("{half")
    orphan.mkdir()
    _save(mgr, 4)  # the next write of the index and the next prune clean too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json", "step_00000003",
                                                          "step_00000004"]


def test_a_torn_newest_state_json_falls_back_to_the_previous_checkpoint(tmp_path):
    mgr = CheckpointManager(tmp_path, keep_last=2, keep_best=False)
    _save(mgr, 1)
    _save(mgr, 2)
    state = tmp_path / "step_00000002" / "state.json"
    state.write_text(state.read_text()[:40])
    assert mgr.load().step == 1


def test_a_checkpoints_symlink_to_another_run_is_refused_before_deleting(tmp_path):
    other = CheckpointManager(tmp_path / "other" / "checkpoints", keep_last=2)
    _save(other, 1)
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoints").symlink_to(tmp_path / "other" / "checkpoints")
    mine = CheckpointManager(run / "checkpoints")
    with pytest.raises(ValueError, match="resolves to .*other/checkpoints.*fix: replace"):
        mine.check_contained(run)
    assert (tmp_path / "other" / "checkpoints" / "step_00000001").is_dir()
