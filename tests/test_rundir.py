"""Run.open: every piece of a pipeline run (built micro here) and of a train run, each
checked against a direct load; a one-line error for each missing piece."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch
from helpers_training import copy_run, make_shards, tiny_run

from cocomix_lens import CoCoMixModel, LabelCache, MissingPieceError, Run
from cocomix_lens.data import TokenShards, load_tokenizer
from cocomix_lens.rundir import LAYOUT, PIECES
from training.config import LoggingSection

TEXT = "the ship and the star"


@pytest.fixture(scope="module")
def pipeline_run(micro_run):
    return micro_run  # the session's (tests/conftest.py): tests that change it copy it first


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    from training.trainer import train

    tmp = tmp_path_factory.mktemp("trainrun")
    data = make_shards(tmp)
    summary = train(tiny_run(data, steps=4), out_dir=tmp / "run")
    return tmp / "run", data, summary


def ids_of(model, text=TEXT):
    return torch.tensor([model.tokenizer.encode(text).ids])


def test_pipeline_run_has_every_piece(pipeline_run):
    _, out, summary = pipeline_run
    run = Run.open(out)
    assert run.kind == "pipeline" and run.path == out
    # the catalog stage included; steering is `steer-eval --densest --out`'s, not a stage's;
    # a text corpus has no ground truth; the study is `cocomix-lens study`'s
    assert {p for p in PIECES if run.has(p)} == set(PIECES) - {"steering", "groundtruth",
                                                               "steer_bench", "study"}
    assert run.summary == json.loads((out / "summary.json").read_text())
    assert run.summary["cocomix"]["val_loss"] == summary["cocomix"]["val_loss"]
    assert run.report == (out / "REPORT.md").read_text() and "| cocomix |" in run.report
    assert run.catalogue_dir == out / "catalogue"
    # the summary's artifacts are LAYOUT's paths, the ones the reader opens (each stage's)
    assert summary["artifacts"] == {p: r for p, r in LAYOUT.pieces("pipeline").items()
                                    if p not in ("summary", "report", "steering",
                                                 "groundtruth", "steer_bench", "study")}


@pytest.mark.parametrize("piece,stage", [("student", "cocomix"), ("baseline", "ntp"),
                                         ("teacher", "teacher")])
def test_models_equal_a_direct_load_and_carry_the_tokenizer(pipeline_run, piece, stage):
    _, out, summary = pipeline_run
    run = Run.open(out)
    model = getattr(run, piece)
    assert getattr(run, piece) is model  # loaded once
    assert not model.training
    reference = CoCoMixModel.from_pretrained(out / stage / "model").eval()
    ids = ids_of(model)
    with torch.no_grad():
        assert torch.equal(model(ids), reference(ids))
    assert model.tokenizer.to_str() == run.tokenizer.to_str()
    assert (model.cfg.mix_mode == "none") == (piece != "student")
    assert model.cfg.to_dict() == summary[stage]["model_config"]


def test_sae_labels_shards_and_tokenizer_match_direct_loads(pipeline_run):
    from sae_lens import SAE

    _, out, summary = pipeline_run
    run = Run.open(out)
    assert run.sae.cfg.metadata.hook_name == summary["sae"]["hook"]
    direct = SAE.load_from_disk(out / "sae")
    assert all(torch.equal(a, b) for a, b in zip(run.sae.state_dict().values(),
                                                  direct.state_dict().values()))
    cache = LabelCache.open(out / "labels")
    for split in ("train", "val"):
        assert np.array_equal(run.labels.array(split), cache.array(split))
    assert run.labels.meta["n_latents"] == summary["sae"]["d_sae"]
    shards = TokenShards.open(out / "data")
    assert run.shards.n_tokens("train") == summary["prepare"]["train_tokens"]
    assert np.array_equal(run.shards.split("val"), shards.split("val"))
    direct_tok = load_tokenizer(out / "data" / "tokenizer.json")
    assert run.tokenizer.encode(TEXT).ids == direct_tok.encode(TEXT).ids


def test_metrics_hold_every_record_of_each_training_stage(pipeline_run):
    cfg, out, summary = pipeline_run
    run = Run.open(out)
    assert set(run.metrics) == {"teacher", "ntp", "cocomix"}
    log_every = LoggingSection().log_every
    for stage, steps in (("teacher", cfg.teacher.max_steps), ("ntp", cfg.student.max_steps),
                         ("cocomix", cfg.student.max_steps)):
        recs = run.metrics[stage]
        lines = (out / stage / "metrics.jsonl").read_text().splitlines()
        assert len(recs) == len(lines)
        train_steps = [r["step"] for r in recs if r["split"] == "train"]
        assert train_steps == [s for s in range(1, steps + 1)
                               if s % log_every == 0 or s == steps]
        val = [r for r in recs if r["split"] == "val"]
        assert val[-1]["val_loss"] == pytest.approx(summary[stage]["val_loss"])


def test_a_torn_last_metrics_line_is_skipped(pipeline_run, tmp_path):
    _, out, _ = pipeline_run
    copy = copy_run(out, tmp_path)
    path = copy / "ntp" / "metrics.jsonl"
    n = len(path.read_text().splitlines())
    with open(path, "a") as f:
        f.write('{"split": "train", "st')
    assert len(Run.open(copy).metrics["ntp"]) == n


MISSING = {"tokenizer": "data/tokenizer.json", "student": "cocomix/model",
           "baseline": "ntp/model", "teacher": "teacher/model", "sae": "sae",
           "labels": "labels", "shards": "data", "summary": "summary.json",
           "report": "REPORT.md"}


@pytest.mark.parametrize("piece", sorted(MISSING))
def test_each_missing_piece_is_a_one_line_error_naming_path_and_command(
        pipeline_run, tmp_path, piece):
    _, out, _ = pipeline_run
    copy = copy_run(out, tmp_path)
    target = copy / MISSING[piece]
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    run = Run.open(copy)
    assert not run.has(piece)
    with pytest.raises(MissingPieceError) as err:
        getattr(run, piece)
    msg = str(err.value)
    assert "\n" not in msg and isinstance(err.value, FileNotFoundError)
    assert msg == (f"run {copy} has no {piece} (looked for {target}); fix: "
                   f"run the pipeline step (out='{copy}')")  # the CLI: `cocomix-lens ...`


def test_missing_metrics_and_catalogue_name_their_commands(pipeline_run, tmp_path):
    _, out, _ = pipeline_run
    copy = copy_run(out, tmp_path)
    for stage in ("teacher", "ntp", "cocomix"):
        (copy / stage / "metrics.jsonl").unlink()
    with pytest.raises(MissingPieceError, match=re.escape(f"pipeline step (out='{copy}')")):
        Run.open(copy).metrics
    shutil.rmtree(copy / "catalogue")
    assert not Run.open(copy).has("catalogue")
    with pytest.raises(MissingPieceError, match=re.escape(f"catalog step (run='{copy}')")):
        Run.open(copy).catalogue
    with pytest.raises(MissingPieceError, match=re.escape(
            f"steer-eval step (run='{copy}', densest=10, out='{copy}/steering')")):
        Run.open(copy).steering
    (copy / "steering").mkdir()
    (copy / "steering" / "steering.json").write_text('{"concept": 7}')
    assert Run.open(copy).has("steering") and Run.open(copy).steering == {"concept": 7}


def test_train_run_opens_model_metrics_summary_and_its_shards(train_run):
    out, data, summary = train_run
    run = Run.open(out)
    assert run.kind == "train"
    reference = CoCoMixModel.from_pretrained(out / "model").eval()
    ids = ids_of(reference)
    with torch.no_grad():
        assert torch.equal(run.student(ids), reference(ids))
    assert run.summary["steps"] == summary["steps"] == 4
    assert [r["step"] for r in run.metrics["train"] if r["split"] == "train"] == [1, 2, 3, 4]
    assert run.shards.root == data  # from config.yaml's data.dir
    assert run.tokenizer.to_str() == TokenShards.open(data).tokenizer.to_str()


@pytest.mark.parametrize("piece", ["teacher", "sae", "baseline", "report", "labels"])
def test_train_run_pieces_it_cannot_hold_are_one_line_errors(train_run, piece):
    out, _, _ = train_run
    run = Run.open(out)
    assert not run.has(piece)
    with pytest.raises(MissingPieceError, match=f"^run {out} has no {piece} .*pipeline"):
        getattr(run, piece)


def test_a_directory_that_is_no_run_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory.*the pipeline step \\(out="):
        Run.open(tmp_path)
    with pytest.raises(ValueError, match="unknown run piece 'weights'"):
        Run(tmp_path, "pipeline").has("weights")


def test_require_gives_a_piece_path_or_the_one_line_error(pipeline_run, tmp_path):
    _, out, _ = pipeline_run
    assert Run.open(out).require("sae") == out / "sae"
    copy = copy_run(out, tmp_path)
    shutil.rmtree(copy / "catalogue", ignore_errors=True)
    with pytest.raises(MissingPieceError, match=r"no catalogue .*the catalog step \(run="):
        Run.open(copy).require("catalogue")


@pytest.mark.parametrize("device, message", [("cuda", "CUDA is not available"),
                                             ("gpu9", "is not a torch device")])
def test_an_unusable_device_is_refused_when_the_run_opens(tmp_path, device, message):
    import torch

    from cocomix_lens import Run

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match=f"device='{device}'.*{message}.*fix"):
        Run.open(tmp_path, device=device)


def test_result_files_are_read_again_when_a_command_rewrites_them(pipeline_run, tmp_path):
    """The app keeps one Run per process: a steer-eval re-run while it serves must show."""
    import os

    _, out, _ = pipeline_run
    copy = copy_run(out, tmp_path)
    (copy / "steering").mkdir()
    path = copy / "steering" / "steering.json"
    path.write_text('{"concept": 7}')
    run = Run.open(copy)
    first = run.steering
    assert first == {"concept": 7} and run.steering is first  # read once while unchanged
    student = run.student
    path.write_text('{"concept": 12, "strength": 4}')
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert run.steering == {"concept": 12, "strength": 4}
    summary = run.summary
    (copy / "summary.json").write_text(json.dumps({**summary, "note": "rerun"}))
    assert run.summary["note"] == "rerun"
    assert run.student is student  # models stay loaded once
