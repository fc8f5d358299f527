"""The trainer: SIGKILL + --resume is bitwise identical, NaN stops cleanly, accumulation and
evaluation do what they say."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers_training import TokenLabels, make_shards, tiny_run
from safetensors.torch import load_file

from cocomix_lens import CoCoMixModel
from training.checkpoint import CheckpointManager
from training.trainer import NonFiniteLossError, train

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("data"))


def _cli(data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "training.cli", "train", "--objective", "ntp", "--data",
            str(data), "--out", str(out), "--max-steps", "40", "--data.seq_len", "16",
            "--data.batch_size", "4", "--model.d_model", "32", "--model.n_layers", "2",
            "--model.n_heads", "2", "--model.n_ctx", "32", "--checkpoint.every", "4",
            "--logging.eval_every", "8", "--logging.eval_batches", "1",
            "--logging.progress", "false", "--system.device", "cpu", *extra]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _latest_step(out: Path) -> int:
    index = out / "checkpoints" / "index.json"
    if not index.is_file():
        return 0
    return json.loads(index.read_text())["checkpoints"][-1]["step"]


# Loaded by the interpreter at start-up (sitecustomize): slows every optimizer step so the test
# can kill the run between checkpoints on any machine; sleeping changes no number.
SLOW_STEPS = """
import time
import training.trainer as t
_step = t.Trainer._train_step
t.Trainer._train_step = lambda self: (time.sleep(0.05), _step(self))[1]
"""


def test_resume_after_sigkill_ends_bitwise_identical(shards, tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(_cli(shards, full), env=_env(), check=True, capture_output=True, cwd=REPO)
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(SLOW_STEPS)
    env = {**_env(), "PYTHONPATH": f"{slow}{os.pathsep}{REPO}"}
    proc = subprocess.Popen(_cli(shards, killed), env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _latest_step(killed) < 4 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kill_step = _latest_step(killed)
    assert 4 <= kill_step < 40 and not (killed / "summary.json").exists()
    done = subprocess.run(_cli(shards, killed, "--resume"), env=_env(), cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from" in done.stderr
    a, b = load_file(str(full / "model/model.safetensors")), load_file(
        str(killed / "model/model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # metrics.jsonl of the resumed run has no duplicated steps and matches the full run's
    rows = lambda p: [json.loads(x) for x in (p / "metrics.jsonl").read_text().splitlines()]
    train_a = [(r["step"], r["loss"]) for r in rows(full) if r["split"] == "train"]
    train_b = [(r["step"], r["loss"]) for r in rows(killed) if r["split"] == "train"]
    assert train_a == train_b


def test_nan_loss_stops_and_keeps_last_good_checkpoint(shards, tmp_path):
    cfg = tiny_run(shards, "ntp", steps=10)
    torch.manual_seed(cfg.seed)
    model = CoCoMixModel(cfg.model_config(d_vocab=300, mix_mode="none"))
    calls = {"n": 0}

    def poison(x, hook):  # the 5th training forward produces NaN
        if model.training:
            calls["n"] += 1
            if calls["n"] == 5:
                return x * float("nan")
        return x

    model.add_hook("hook_embed", poison)
    with pytest.raises(NonFiniteLossError, match=r"step 5.*step_00000003"):
        train(cfg, model, data=shards, out_dir=tmp_path)
    ck = CheckpointManager(tmp_path / "checkpoints").load()
    assert ck.step == 3 and all(torch.isfinite(v).all() for v in ck.model.values())
    assert not (tmp_path / "summary.json").exists()


def test_grad_accumulation_matches_one_big_batch(shards, tmp_path):
    one = train(tiny_run(shards, "ntp", steps=3, optim__grad_accum=1), data=shards,
                out_dir=tmp_path / "one")
    two = train(tiny_run(shards, "ntp", steps=3, optim__grad_accum=2), data=shards,
                out_dir=tmp_path / "two")
    losses = [[json.loads(x)["loss"] for x in (tmp_path / d / "metrics.jsonl").read_text()
               .splitlines() if json.loads(x)["split"] == "train"] for d in ("one", "two")]
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)
    assert one["val_loss"] == pytest.approx(two["val_loss"], abs=1e-5)


def test_cocomix_run_writes_model_metrics_and_concept_eval(shards, tmp_path):
    s = train(tiny_run(shards, "cocomix", steps=6), data=shards, labels=TokenLabels(),
              out_dir=tmp_path)
    assert {"val_loss", "val_ppl", "concept_ce", "concept_top1", "concept_top4",
            "concept_distinct"} <= set(s)
    assert s["val_ppl"] == pytest.approx(2.718281828 ** s["val_loss"], rel=1e-6)
    model = CoCoMixModel.from_pretrained(tmp_path / "model")
    assert model.cfg.mix_mode == "interleave" and model.metadata["step"] == 6
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "val"] == [3, 6]
    assert all("concept" in r and "lr" in r for r in rows if r["split"] == "train")
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 6


def test_clear_errors_for_bad_setups(shards, tmp_path):
    with pytest.raises(ValueError, match="needs concept labels"):
        train(tiny_run(shards, "cocomix"), data=shards, out_dir=tmp_path)
    with pytest.raises(ValueError, match="not divisible"):
        train(tiny_run(shards, "ntp", data__batch_size=6, optim__grad_accum=4), data=shards,
              out_dir=tmp_path)
    with pytest.raises(ValueError, match="mix_mode"):
        train(tiny_run(shards, "ntp", model__mix_mode="add"), data=shards, out_dir=tmp_path)
    with pytest.raises(ValueError, match="n_ctx"):
        train(tiny_run(shards, "ntp", data__seq_len=64), data=shards, out_dir=tmp_path)


def test_kd_run_uses_a_frozen_teacher(shards, tmp_path):
    torch.manual_seed(1)
    cfg = tiny_run(shards, "kd", steps=3)
    teacher = CoCoMixModel(cfg.model_config(d_vocab=300, mix_mode="none", d_model=48))
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    s = train(cfg, data=shards, teacher=teacher, out_dir=tmp_path)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(r["kd"] > 0 and r["loss"] == pytest.approx(r["ntp"] + 0.1 * r["kd"], abs=1e-5)
               for r in rows if r["split"] == "train")
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert s["objective"] == "kd"


def test_resume_refuses_another_objective_or_model(shards, tmp_path):
    train(tiny_run(shards, "ntp", steps=3), data=shards, out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"holds a run built differently: objective='ntp' "
                                         r"\(now 'pause'\); .*fix: resume with the same"):
        train(tiny_run(shards, "pause", steps=4), data=shards, out_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match=r"built differently: model.d_model=32 \(now 16\)"):
        train(tiny_run(shards, "ntp", steps=4, model__d_model=16), data=shards,
              out_dir=tmp_path, resume=True)
    assert train(tiny_run(shards, "ntp", steps=4), data=shards, out_dir=tmp_path,
                 resume=True)["steps"] == 4


def test_concept_head_learns_labels_far_above_chance(shards, tmp_path):
    # TokenLabels are a function of the current token, so the predictor can learn them fast.
    cfg = tiny_run(shards, "cocomix", steps=30, optim__lr=3e-3, concept__lam=1.0,
                   logging__eval_every=30, checkpoint__every=30)
    s = train(cfg, data=shards, labels=TokenLabels(n_concepts=32), out_dir=tmp_path)
    chance_top1, chance_top4 = 4 / 32, 4 / 32
    assert s["concept_top1"] > 5 * chance_top1 and s["concept_top4"] > 4 * chance_top4
    first = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert s["concept_ce"] < first["concept"] - 0.5


def test_kd_teacher_from_a_directory_loads_through_the_teacher_registry(shards, tmp_path):
    cfg = tiny_run(shards, "kd", steps=3)
    torch.manual_seed(1)
    teacher = CoCoMixModel(cfg.model_config(d_vocab=300, mix_mode="none", d_model=48))
    teacher.save_pretrained(tmp_path / "teacher", tokenizer=load_shards(shards).tokenizer)
    given = train(cfg, data=shards, teacher=teacher, out_dir=tmp_path / "given")
    cfg.concept.teacher = str(tmp_path / "teacher")
    loaded = train(cfg, data=shards, out_dir=tmp_path / "loaded")
    assert loaded["val_loss"] == given["val_loss"]  # the same teacher, the same run


def test_kd_teacher_by_name_loads_a_transformer_lens_model(shards, tmp_path, monkeypatch):
    from cocomix_lens.concepts import teacher as registry
    from cocomix_lens.model.hooks import HookedTransformer, HookedTransformerConfig

    asked = []

    def tl_model(spec, device, **kw):  # what TransformerLens would fetch, without the network
        asked.append(spec)
        torch.manual_seed(2)
        return HookedTransformer(HookedTransformerConfig(
            n_layers=1, d_model=16, n_ctx=32, d_head=8, n_heads=2, d_vocab=300,
            act_fn="gelu_new", normalization_type="LN"))

    sources = [s if s.name != "transformer-lens" else registry.Source(s.name, s.matches, tl_model)
               for s in registry.TEACHER_SOURCES]
    monkeypatch.setattr(registry, "TEACHER_SOURCES", sources)
    cfg = tiny_run(shards, "kd", steps=2)
    cfg.concept.teacher = "gpt2"
    s = train(cfg, data=shards, out_dir=tmp_path)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert asked == ["gpt2"] and s["objective"] == "kd"
    assert all(r["kd"] > 0 for r in rows if r["split"] == "train")


def load_shards(path):
    from cocomix_lens.data import TokenShards

    return TokenShards.open(path)


def test_resume_with_changed_settings_is_refused_naming_the_flags_that_resume(shards, tmp_path):
    train(tiny_run(shards, "ntp", steps=3), data=shards, out_dir=tmp_path)
    before = (tmp_path / "config.yaml").read_text()
    with pytest.raises(ValueError, match=r"optim.lr 0.0006 -> 0.5.*fix: resume with "
                                         r"--optim.lr 0.0006"):
        train(tiny_run(shards, "ntp", steps=3, optim__lr=0.5), data=shards, out_dir=tmp_path,
              resume=True)
    assert (tmp_path / "config.yaml").read_text() == before  # config.yaml never lies
    with pytest.raises(ValueError, match=r"--max-steps 2 is below the 3 steps.*--max-steps 3"):
        train(tiny_run(shards, "ntp", steps=2), data=shards, out_dir=tmp_path, resume=True)


def test_a_longer_resume_keeps_the_schedule_of_the_run_so_the_lr_never_jumps(shards, tmp_path):
    import yaml

    from training.optim import lr_factor

    train(tiny_run(shards, "ntp", steps=6), data=shards, out_dir=tmp_path)
    s = train(tiny_run(shards, "ntp", steps=9), data=shards, out_dir=tmp_path, resume=True)
    assert s["steps"] == 9
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert cfg["optim"]["schedule_steps"] == 6 and cfg["optim"]["max_steps"] == 9
    assert cfg["system"]["threads"] == torch.get_num_threads()  # the count used, recorded
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in rows if r.get("split") == "train" and "lr" in r]
    assert all(b <= a for a, b in zip(lrs[1:], lrs[2:]))  # no jump back up after warmup
    floor = 6e-4 * lr_factor(100, warmup=2, max_steps=6, min_ratio=0.1)
    assert lrs[-3:] == pytest.approx([floor] * 3)
    # a second resume keeps the same horizon without being told
    assert train(tiny_run(shards, "ntp", steps=10), data=shards, out_dir=tmp_path,
                 resume=True)["steps"] == 10


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_resume_takes_the_run_s_thread_count_so_it_stays_bitwise(shards, tmp_path, caplog,
                                                                   monkeypatch, torch_threads):
    """Issue 25 item 11: the default count follows the load average, so a resumed process
    could pick another count than the run it resumes; a sum over 2 threads adds in another
    order than over 1, and the weights drifted in their last bits."""
    import training.threads

    def run(out, steps, resume=False, **threads):
        cfg = tiny_run(shards, "cocomix", steps=steps, optim__schedule_steps=6, **threads)
        train(cfg, data=shards, labels=TokenLabels(32), out_dir=tmp_path / out, resume=resume)
        return load_file(tmp_path / out / "model" / "model.safetensors")

    ref = run("ref", 6, system__threads=1)
    run("hit", 3, system__threads=1)
    run("other", 3, system__threads=1)
    monkeypatch.setattr(training.threads, "default_threads", lambda: 2)  # a busy machine's
    hit = run("hit", 6, resume=True)  # no count given: the run's own (1)
    assert all(torch.equal(ref[k], hit[k]) for k in ref)
    other = run("other", 6, resume=True, system__threads=2)  # the cause, and a warning
    drift = max((ref[k] - other[k]).abs().max().item() for k in ref)
    assert 0 < drift < 1e-5
    assert "resuming on 2 CPU threads where the run used 1" in caplog.text
