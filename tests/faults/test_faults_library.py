"""The fault matrix, library side: bad arguments raise one clear exception line; the run
directory lock is re-entrant in one process and released by SIGKILL."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch
from helpers_faults import (
    Holder,
    World,
    copy,
    corrupt_shard,
    edit_json,
    truncate,
)
from helpers_model import tiny_config

from cocomix_lens import CoCoMixModel
from cocomix_lens.concepts import LabelCache
from cocomix_lens.data import TokenShards, load_tokenizer
from cocomix_lens.data.lock import DirLock
from training.checkpoint import CheckpointManager


# ---- library: bad arguments raise clear errors (type, words) -------------------------------
def _tiny_model():
    torch.manual_seed(0)
    return CoCoMixModel(tiny_config()).eval()


def _stale_stream(w: World, t: Path):
    m = _tiny_model()
    with m.hooks(fwd_hooks=[("concept.hook_logits", lambda z, hook: z * 2)]):
        s = m.stream(torch.zeros(1, 3, dtype=torch.long), 4, temperature=0)
    return next(s)


def _nan_generate(w: World, t: Path):
    m = _tiny_model()
    with m.hooks(fwd_hooks=[("hook_embed", lambda x, hook: x * float("nan"))]):
        return m.generate(torch.zeros(1, 3, dtype=torch.long), 4, temperature=0)


LIBRARY_CASES = [
    ("stream-after-hooks-removed", _stale_stream, RuntimeError, "removed"),
    ("generate-nan-logits", _nan_generate, ValueError, "non-finite logits"),
    ("generate-too-long", lambda w, t: _tiny_model().generate(torch.zeros(1, 60, dtype=torch.long),
                                                              10), ValueError, "n_ctx"),
    ("generate-top-p", lambda w, t: _tiny_model().generate(torch.zeros(1, 3, dtype=torch.long),
                                                           2, top_p=2.0), ValueError, "top_p"),
    ("forward-ids-out-of-range", lambda w, t: _tiny_model()(torch.tensor([[1, 500]])), ValueError,
     "token ids must lie in [0, 97)"),
    ("forward-negative-ids", lambda w, t: _tiny_model()(torch.tensor([[-1, 2]])), ValueError,
     "token ids"),
    ("hooks-unknown-name", lambda w, t: _tiny_model().hooks(
        fwd_hooks=[("blocks.0.hook_resid_pst", lambda x, hook: x)]).__enter__(), ValueError,
     "did you mean blocks.0.hook_resid_post"),
    ("run-with-hooks-unknown-name", lambda w, t: _tiny_model().run_with_hooks(
        torch.zeros(1, 3, dtype=torch.long), fwd_hooks=[("nosuch", lambda x, hook: x)]),
     ValueError, "no hook point named 'nosuch'"),
    ("from-pretrained-missing", lambda w, t: CoCoMixModel.from_pretrained(t / "none"),
     FileNotFoundError, "config.json"),
    ("from-pretrained-truncated", lambda w, t: (
        truncate(copy(w.teacher, t / "te") / "model.safetensors", 40),
        CoCoMixModel.from_pretrained(t / "te")), ValueError, "model.safetensors"),
    ("shards-verify", lambda w, t: TokenShards.open(corrupt_shard(w, t), verify=True),
     ValueError, "sha256"),
    ("shards-window-range", lambda w, t: TokenShards.open(w.shards).batch("train", [10 ** 9], 8),
     ValueError, "window starts"),
    ("label-cache-incomplete", lambda w, t: (
        edit_json(copy(w.labels, t / "l") / "meta.json", splits={
            s: {**i, "done_windows": 0} for s, i in json.loads(
                (w.labels / "meta.json").read_text())["splits"].items()}),
        LabelCache.open(t / "l")), ValueError, "incomplete"),
    ("checkpoint-none", lambda w, t: CheckpointManager(t).load(), FileNotFoundError,
     "no complete checkpoint"),
    ("tokenizer-corrupt", lambda w, t: ((t / "t.json").write_text("{"),
                                        load_tokenizer(t / "t.json")), ValueError, "t.json"),
    ("manifest-json", lambda w, t: ((copy(w.shards, t / "s") / "manifest.json").write_text("{x"),
                                    TokenShards.open(t / "s")), ValueError, "manifest.json"),
]


@pytest.mark.parametrize("fn,exc,needle", [c[1:] for c in LIBRARY_CASES],
                         ids=[c[0] for c in LIBRARY_CASES])
def test_library_bad_arguments_raise_clear_errors(world, tmp_path, fn, exc, needle):
    with pytest.raises(exc) as info:
        fn(world, tmp_path)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_lock_is_reentrant_in_one_process_and_leaves_no_file(tmp_path):
    with DirLock(tmp_path), DirLock(tmp_path):
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
    assert not (tmp_path / ".lock").exists()


def test_lock_is_released_by_sigkill(tmp_path):
    holder = Holder(tmp_path / "d")
    holder.stop()  # SIGKILL: the kernel drops the flock
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            with DirLock(tmp_path / "d"):
                return
        except RuntimeError:
            time.sleep(0.05)
    raise AssertionError("lock still held after its holder was killed")
