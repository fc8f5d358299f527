"""2-process gloo runs (DDP via torch.multiprocessing, FSDP via torchrun + the CLI) match a
single process with the same global batch."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch.multiprocessing as mp
from helpers_training import TokenLabels, make_shards, tiny_run

from training.cli import main
from training.trainer import train

REPO = Path(__file__).resolve().parents[2]
STEPS = 4


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("data"))


def _losses(out: Path) -> list[float]:
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r["split"] == "train"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank), OMP_NUM_THREADS="1")
    train(tiny_run(Path(data), "cocomix", steps=STEPS), data=data, labels=TokenLabels(),
          out_dir=out)


def test_ddp_two_processes_match_single_process_loss(shards, tmp_path):
    single = train(tiny_run(shards, "cocomix", steps=STEPS), data=shards, labels=TokenLabels(),
                   out_dir=tmp_path / "single")
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(shards), str(tmp_path / "ddp")),
             nprocs=2, join=True)
    assert _losses(tmp_path / "ddp") == pytest.approx(_losses(tmp_path / "single"), abs=1e-4)
    ddp = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert ddp["world_size"] == 2
    for key in ("val_loss", "concept_ce", "concept_top1", "concept_top4"):
        assert ddp[key] == pytest.approx(single[key], abs=1e-4)


def test_fsdp_under_torchrun_matches_single_process(shards, tmp_path):
    args = ["train", "--objective", "ntp", "--data", str(shards), "--max-steps", str(STEPS),
            "--data.seq_len", "16", "--data.batch_size", "4", "--model.d_model", "32",
            "--model.n_layers", "2", "--model.n_heads", "2", "--model.n_ctx", "32",
            "--logging.log_every", "1", "--logging.progress", "false",
            "--checkpoint.every", "2", "--system.device", "cpu"]
    # the single process in this one (a fresh one would spend most of its time importing)
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", "-m", "training.cli", *args,
                          "--system.fsdp", "true", "--out", str(tmp_path / "fsdp")],
                         env=env, cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert _losses(tmp_path / "fsdp") == pytest.approx(_losses(tmp_path / "one"), abs=1e-4)
    # the FSDP checkpoint holds full (unsharded) tensors that load into a plain model
    from cocomix_lens import CoCoMixModel

    model = CoCoMixModel.from_pretrained(tmp_path / "fsdp" / "model")
    assert model.cfg.d_model == 32
