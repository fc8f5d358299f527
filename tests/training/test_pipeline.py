"""The offline pipeline end to end on a miniature corpus: stages, skip, resume, reloading."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
import yaml
from helpers_training import copy_run
from safetensors.torch import load_file

from cocomix_lens.rundir import LAYOUT
from training.pipeline import STAGES, run_pipeline
from training.pipeline_config import apply_overrides, pipeline_preset


@pytest.fixture(scope="module")
def run(micro_run, tmp_path_factory):
    """A copy of the session's micro run (tests/conftest.py) with its checkpoints: these
    tests re-run, resume and change it."""
    cfg, out, summary = micro_run
    return cfg, copy_run(out, tmp_path_factory.mktemp("pipeline"), checkpoints=True), summary


def test_pipeline_runs_every_stage_and_writes_summary(run):
    cfg, out, summary = run
    assert list(summary["stages"]) == list(STAGES)
    assert not any(s["skipped"] for s in summary["stages"].values())
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["complete"] and on_disk["ntp"]["val_loss"] == summary["ntp"]["val_loss"]
    report = (out / "REPORT.md").read_text()
    assert "| cocomix |" in report and "variance explained" in report
    # both students saw the same number of tokens, and learned something
    uniform = math.log(summary["prepare"]["vocab_size"])
    for name in ("teacher", "ntp", "cocomix"):
        assert summary[name]["val_loss"] < uniform
    assert summary["ntp"]["tokens"] == summary["cocomix"]["tokens"] == (
        cfg.student.max_steps * cfg.batch_size * cfg.seq_len)


def test_sae_is_saved_in_sae_lens_format_with_quality(run):
    from sae_lens import SAE

    cfg, out, summary = run
    sae = SAE.load_from_disk(out / "sae")
    q = summary["sae"]
    assert sae.cfg.d_sae == q["d_sae"] == cfg.sae.d_sae
    assert sae.cfg.metadata.hook_name == q["hook"] == "blocks.0.hook_resid_post"
    assert 0 < q["l0"] <= cfg.sae.k
    assert 0 <= q["dead_latents"] <= cfg.sae.d_sae
    assert q["variance_explained"] <= 1.0
    # the quality numbers are those of the saved SAE on the val activations
    saved_q = json.loads((out / "sae" / "quality.json").read_text())
    assert saved_q["variance_explained"] == pytest.approx(q["variance_explained"])


def test_report_names_the_sae_architecture_from_its_config(run):
    from sae_lens import SAE

    from training.pipeline_report import sae_title

    cfg, out, summary = run
    saved = SAE.load_from_disk(out / "sae").cfg
    q = summary["sae"]
    assert q["architecture"] == saved.architecture() == "topk"
    assert q["training_architecture"] == saved.metadata.training_architecture == \
        cfg.sae.architecture
    assert "\n## SAE (TopK, SAE-Lens)\n" in (out / "REPORT.md").read_text()
    # a Matryoshka BatchTopK SAE is saved as JumpReLU: the header says both, never TopK
    assert sae_title({"training_architecture": "matryoshka_batchtopk",
                      "architecture": "jumprelu"}) == \
        "## SAE (Matryoshka BatchTopK, saved as JumpReLU; SAE-Lens)"
    assert sae_title({}) == "## SAE (SAE-Lens)"  # a summary from before the fields


def test_run_directory_reloads_teacher_sae_students_and_tokenizer(run):
    from cocomix_lens import CoCoMixModel
    from cocomix_lens.concepts import ConceptExtractor, load_teacher
    from cocomix_lens.data import load_tokenizer

    _, out, summary = run
    arts = summary["artifacts"]
    tok = load_tokenizer(out / arts["tokenizer"])
    ids = torch.tensor([tok.encode("the ship and the star").ids])
    pair = load_teacher(out / arts["teacher"], out / arts["sae"])
    labels, _ = ConceptExtractor(pair.model, pair.sae).labels(ids, k=4)
    assert labels.shape == (1, ids.shape[1], 4)
    student = CoCoMixModel.from_pretrained(out / arts["student"])
    logits, concepts = student(ids, return_concept_logits=True)
    assert concepts.shape[-1] == summary["sae"]["d_sae"]
    ntp = CoCoMixModel.from_pretrained(out / arts["baseline"])
    assert ntp.cfg.mix_mode == "none" and torch.isfinite(ntp(ids)).all()


def test_second_invocation_skips_finished_stages(run):
    cfg, out, summary = run
    before = (out / "cocomix" / "model" / "model.safetensors").stat().st_mtime_ns
    again = run_pipeline(cfg, out)
    assert all(s["skipped"] for s in again["stages"].values())
    assert (out / "cocomix" / "model" / "model.safetensors").stat().st_mtime_ns == before
    assert again["cocomix"] == summary["cocomix"]


def test_interrupted_stage_resumes_from_its_checkpoint_bitwise(run):
    cfg, out, _ = run
    weights = out / "cocomix" / "model" / "model.safetensors"
    reference = load_file(weights)
    # Pretend the run died after the second-to-last checkpoint: no marker, no final model.
    (out / "stages" / "cocomix.json").unlink()
    index_path = out / "cocomix" / "checkpoints" / "index.json"
    index = json.loads(index_path.read_text())
    ckpts = sorted(p.name for p in index_path.parent.glob("step_*"))
    assert len(ckpts) == 2
    index["latest"] = ckpts[0]
    index_path.write_text(json.dumps(index))
    weights.unlink()
    again = run_pipeline(cfg, out)
    assert not again["stages"]["cocomix"]["skipped"]
    assert again["stages"]["ntp"]["skipped"]
    resumed = load_file(weights)
    assert resumed.keys() == reference.keys()
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)


def test_a_run_recorded_before_a_setting_existed_resumes_at_its_default(run):
    """pipeline.json of a run made before a setting was added lacks it: at its default the
    run resumes (every stage skipped); another value is refused like any change."""
    cfg, out, _ = run
    path = out / LAYOUT.pipeline.config
    record = json.loads(path.read_text())
    try:
        path.write_text(json.dumps({k: v for k, v in record.items() if k != "sae.sparsity"}))
        again = run_pipeline(cfg, out)
        assert all(s["skipped"] for s in again["stages"].values())
        path.write_text(json.dumps({k: v for k, v in record.items() if k != "sae.sparsity"}))
        with pytest.raises(ValueError, match=r"sae.sparsity=1.0 \(now 2.0\)"):
            run_pipeline(apply_overrides(cfg, {"sae.sparsity": "2"}), out)
    finally:
        path.write_text(json.dumps(record))


def test_changed_settings_are_refused_in_a_used_run_directory(run):
    cfg, out, _ = run
    other = dataclasses.replace(cfg, seed=cfg.seed + 1)
    with pytest.raises(ValueError, match=r"finished stages used other settings: seed=0 "
                                         r"\(now 1\); fix: add `--seed 0` to the command to "
                                         r"resume it, or pass another --out$"):
        run_pipeline(other, out)
    steps = apply_overrides(cfg, {"student.max_steps": "6", "student.overrides.d_model": "16"})
    with pytest.raises(ValueError, match=r"fix: add `--student.max_steps 12 "
                                         r"--student.overrides.d_model 32` to the command"):
        run_pipeline(steps, out)


def test_unknown_override_and_stage_are_one_line_errors():
    with pytest.raises(ValueError, match="unknown pipeline override --teacher.depth"):
        apply_overrides(pipeline_preset("micro"), {"teacher.depth": "3"})
    with pytest.raises(ValueError, match="unknown stage 'train'"):
        run_pipeline(pipeline_preset("micro"), "/nonexistent/never", stop_after="train")


def test_ntp_student_beside_the_teacher_chain_learns_the_same(run, tmp_path):
    """parallel with 2 threads: the NTP student trains in a second process while teacher,
    SAE and labels run, on the same windows: the same losses as the run trained in order."""
    cfg, _, summary = run
    side = apply_overrides(cfg, {"parallel": "true", "threads": "2"})
    again = run_pipeline(side, tmp_path / "side", stop_after="cocomix")
    assert not again["stages"]["ntp"]["skipped"]
    assert (tmp_path / "side" / "stages" / "ntp.json").is_file()
    for name in ("ntp", "cocomix"):
        assert again[name]["val_loss"] == pytest.approx(summary[name]["val_loss"], abs=1e-5)
    # Each side trains on its share of the threads (not both on all of them), and the
    # stages after the NTP student get every thread back; each trainer records its count.
    used = {name: yaml.safe_load((tmp_path / "side" / LAYOUT.pipeline.run_dir(name)
                                  / LAYOUT.train.config).read_text())["system"]["threads"]
            for name in ("teacher", "ntp", "cocomix")}
    assert used == {"teacher": 1, "ntp": 1, "cocomix": 2}


def test_a_resumed_pipeline_keeps_the_run_s_thread_count(run, tmp_path, monkeypatch, caplog):
    """Issue 25: a resume without a thread count picked the default anew (the cores idle now)
    and gave it to the trainers as if given; it keeps the count the run recorded, as `train
    --resume` does (bitwise results need the same count), and takes another given count with
    a warning."""
    import training.threads

    def used(name: str) -> int:
        return yaml.safe_load((out / LAYOUT.pipeline.run_dir(name) / LAYOUT.train.config)
                              .read_text())["system"]["threads"]

    def recorded() -> int:
        return json.loads((out / LAYOUT.pipeline.config).read_text())["threads"]

    cfg, out = run[0], tmp_path / "threads"
    before = torch.get_num_threads()
    try:
        run_pipeline(dataclasses.replace(cfg, threads=1), out, stop_after="teacher")
        assert recorded() == 1 and used("teacher") == 1
        monkeypatch.setattr(training.threads, "default_threads", lambda: 2)  # now idle
        run_pipeline(dataclasses.replace(cfg, threads=None), out, stop_after="ntp")
        assert used("ntp") == 1 and recorded() == 1 and "where the run used" not in caplog.text
        run_pipeline(dataclasses.replace(cfg, threads=2), out, stop_after="cocomix")
        assert used("cocomix") == 2 and recorded() == 2
        assert "running on 2 CPU threads where the run used 1" in caplog.text
    finally:
        torch.set_num_threads(before)


def test_changed_settings_of_unfinished_stages_restart_them(run):
    """Settings that feed only stages not yet finished are taken: those stages restart.
    (Last in this file: it changes the shared run.)"""
    cfg, out, _ = run
    for name in ("ntp", "cocomix", "groundtruth", "catalog"):
        (out / "stages" / f"{name}.json").unlink(missing_ok=True)
    shorter = apply_overrides(cfg, {"student.max_steps": "6"})
    again = run_pipeline(shorter, out, stop_after="ntp")
    assert again["stages"]["labels"]["skipped"] and not again["stages"]["ntp"]["skipped"]
    assert again["ntp"]["steps"] == 6  # a fresh run, not a resumed 12-step one
    assert json.loads((out / "pipeline.json").read_text())["student.max_steps"] == 6
