"""The bad-input and fault matrix: every case a user or a crash can cause gives the right exit
code and ONE stderr line naming the problem (CLI), or a clear exception (library).

Each CLI case builds its inputs (often a damaged copy of a small, shared world: shards, a
teacher, an SAE, a label cache and a trained run), runs `cocomix-lens` in-process and checks
(exit code, stderr has one line, the line contains the needle). Library cases live in
tests/faults/test_faults_library.py, the shared set-up in tests/faults/helpers_faults.py,
SIGKILL loops in tests/faults/test_fault_loops.py.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from helpers_faults import (
    TINY,
    Holder,
    World,
    copy,
    corrupt_shard,
    edit_json,
    flip_byte,
    labels_argv,
    messages,
    other_tokenizer_shards,
    train_argv,
    truncate,
)

from cocomix_lens.concepts import LabelCache
from cocomix_lens.data import TokenShards
from training.checkpoint import CheckpointManager
from training.cli import main


# ---- the CLI matrix: (id, setup(world, tmp) -> argv, exit code, needle) ----------------------
def _prepare(tmp: Path, *extra: str) -> list[str]:
    src = tmp / "c.txt"
    src.write_text("one doc here\n\nanother doc there\n\nand a third one " * 20)
    return ["prepare", "--corpus", "text", "--path", str(src), "--separator", "\\n\\n",
            "--vocab-size", "300", "--val-fraction", "0.3", *extra]


def _used_prepare_dir(tmp: Path) -> list[str]:
    assert main(_prepare(tmp, "--out", str(tmp / "d"))) == 0
    return _prepare(tmp, "--out", str(tmp / "d"), "--split-seed", "7")


def _file_as_out(tmp: Path) -> Path:
    (tmp / "f").write_text("x")
    return tmp / "f"


def _run_with(w: World, tmp: Path, fn) -> Path:
    run = copy(w.run, tmp / "run")
    fn(run / "checkpoints")
    return run


def _all_states_version(ck: Path) -> None:
    for d in ck.glob("step_*"):
        edit_json(d / "state.json", format_version=99)


CLI_CASES = [
    # prepare
    ("prepare-missing-path", lambda w, t: ["prepare", "--corpus", "text", "--path",
                                           str(t / "nope.txt"), "--out", str(t / "o")], 2,
     "nope.txt"),
    ("prepare-foreign-dir", lambda w, t: ((t / "o").mkdir(), (t / "o/x").write_text("x"),
                                          _prepare(t, "--out", str(t / "o")))[-1], 2, "--force"),
    ("prepare-other-inputs", lambda w, t: _used_prepare_dir(t), 2, "different inputs"),
    ("prepare-out-is-file", lambda w, t: _prepare(t, "--out", str(_file_as_out(t))), 2, "/f"),
    ("prepare-val-fraction", lambda w, t: _prepare(t, "--out", str(t / "o"), "--val-fraction",
                                                   "1.5"), 2, "--val-fraction"),
    ("prepare-gpt2-no-file", lambda w, t: _prepare(t, "--out", str(t / "o"), "--tokenizer",
                                                   "gpt2"), 2, "--tokenizer-file"),
    ("prepare-bad-tokenizer-file", lambda w, t: ((t / "tok.json").write_text("{oops"),
                                                 _prepare(t, "--out", str(t / "o"), "--tokenizer",
                                                          "file", "--tokenizer-file",
                                                          str(t / "tok.json")))[-1], 2,
     "tok.json"),
    ("prepare-bpe-with-file", lambda w, t: _prepare(t, "--out", str(t / "o"), "--tokenizer-file",
                                                    str(w.shards / "tokenizer.json")), 2,
     "--tokenizer-file"),
    ("prepare-empty-corpus", lambda w, t: ((t / "e.txt").write_text(""),
                                           ["prepare", "--corpus", "text", "--path",
                                            str(t / "e.txt"), "--out", str(t / "o")])[-1], 2,
     "no document"),
    ("prepare-bad-corpus", lambda w, t: _prepare(t, "--out", str(t / "o"), "--corpus", "nosuch"),
     2, "--corpus"),
    ("prepare-vocab-int", lambda w, t: _prepare(t, "--out", str(t / "o"), "--vocab-size", "x"),
     2, "--vocab-size"),
    ("prepare-no-out", lambda w, t: ["prepare", "--corpus", "wiki"], 2, "--out"),
    # labels
    ("labels-missing-data", lambda w, t: labels_argv(w, t / "l") [:1] + [
        "--data", str(t / "nodata")] + labels_argv(w, t / "l")[3:], 2, "nodata"),
    ("labels-corrupt-shard", lambda w, t: ["labels", "--data", str(corrupt_shard(w, t))] +
     labels_argv(w, t / "l")[3:], 2, "sha256"),
    ("labels-missing-teacher", lambda w, t: labels_argv(w, t / "l", "--teacher", str(t / "not")),
     2, "not"),
    ("labels-missing-sae", lambda w, t: labels_argv(w, t / "l", "--sae", str(t / "nosae")), 2,
     "nosae"),
    ("labels-window-1", lambda w, t: labels_argv(w, t / "l", "--window", "1"), 2, "window"),
    ("labels-window-too-big", lambda w, t: labels_argv(w, t / "l", "--window", "64"), 2,
     "--window"),
    ("labels-k-0", lambda w, t: labels_argv(w, t / "l", "--k", "0"), 2, "--k: 0"),
    ("labels-k-too-big", lambda w, t: labels_argv(w, t / "l", "--k", "999"), 2, "--k 999"),
    ("labels-batch-0", lambda w, t: labels_argv(w, t / "l", "--batch-size", "0"), 2,
     "--batch-size"),
    ("labels-no-split", lambda w, t: labels_argv(w, t / "l", "--splits", "test"), 2, "'test'"),
    ("labels-other-tokenizer", lambda w, t: ["labels", "--data", str(other_tokenizer_shards(
        w, t))] + labels_argv(w, t / "l")[3:], 2, "tokenizer"),
    ("labels-built-differently", lambda w, t: labels_argv(w, copy(w.labels, t / "l"), "--method",
                                                          "activation"), 2, "built differently"),
    ("labels-teacher-config-json", lambda w, t: (
        (copy(w.teacher, t / "te") / "config.json").write_text("{"),
        labels_argv(w, t / "l", "--teacher", str(t / "te")))[-1], 2, "config.json"),
    ("labels-teacher-format", lambda w, t: (
        edit_json(copy(w.teacher, t / "te") / "config.json", format_version=9),
        labels_argv(w, t / "l", "--teacher", str(t / "te")))[-1], 2, "format_version"),
    ("labels-teacher-weights", lambda w, t: (
        truncate(copy(w.teacher, t / "te") / "model.safetensors", 50),
        labels_argv(w, t / "l", "--teacher", str(t / "te")))[-1], 2, "model.safetensors"),
    ("labels-teacher-tokenizer", lambda w, t: (
        (copy(w.teacher, t / "te") / "tokenizer.json").write_text("[]"),
        labels_argv(w, t / "l", "--teacher", str(t / "te")))[-1], 2, "tokenizer"),
    ("labels-bad-method", lambda w, t: labels_argv(w, t / "l", "--method", "magic"), 2,
     "--method"),
    ("labels-out-is-file", lambda w, t: labels_argv(w, _file_as_out(t)), 2, "/f"),
    # train: flags and overrides
    ("train-no-data", lambda w, t: ["train", "--out", str(t / "r"), *TINY], 2, "--data"),
    ("train-missing-data", lambda w, t: ["train", "--data", str(t / "nodata"), "--out",
                                         str(t / "r"), *TINY], 2, "nodata"),
    ("train-corrupt-shard", lambda w, t: ["train", "--data", str(corrupt_shard(w, t)), "--out",
                                          str(t / "r"), *TINY], 2, "sha256"),
    ("train-cocomix-no-labels", lambda w, t: train_argv(w, t / "r", "--objective", "cocomix"), 2,
     "--labels"),
    ("train-missing-labels", lambda w, t: train_argv(w, t / "r", "--labels", str(t / "nolab")),
     2, "nolab"),
    ("train-eval-every-0", lambda w, t: train_argv(w, t / "r", "--logging.eval_every", "0"), 2,
     "--logging.eval_every"),
    ("train-ckpt-every-0", lambda w, t: train_argv(w, t / "r", "--checkpoint.every", "0"), 2,
     "--checkpoint.every"),
    ("train-max-steps-0", lambda w, t: train_argv(w, t / "r", "--max-steps", "0"), 2,
     "--max-steps"),
    ("train-lr-type", lambda w, t: train_argv(w, t / "r", "--optim.lr", "abc"), 2, "lr"),
    ("train-d-model-type", lambda w, t: train_argv(w, t / "r", "--model.d_model", "abc"), 2,
     "d_model"),
    ("train-unknown-key", lambda w, t: train_argv(w, t / "r", "--optim.nosuch", "1"), 2,
     "nosuch"),
    ("train-override-no-value", lambda w, t: train_argv(w, t / "r", "--optim.lr"), 2,
     "optim.lr"),
    ("train-missing-config", lambda w, t: train_argv(w, t / "r", "--config", str(t / "c.yaml")),
     2, "c.yaml"),
    ("train-bad-yaml", lambda w, t: ((t / "c.yaml").write_text("optim: [1,\n"),
                                     train_argv(w, t / "r", "--config", str(t / "c.yaml")))[-1],
     2, "c.yaml is not valid YAML (line 2"),
    ("train-yaml-not-mapping", lambda w, t: ((t / "c.yaml").write_text("- 1\n"),
                                             train_argv(w, t / "r", "--config",
                                                        str(t / "c.yaml")))[-1], 2, "mapping"),
    ("train-yaml-unknown-key", lambda w, t: ((t / "c.yaml").write_text("optim:\n  lrr: 1\n"),
                                             train_argv(w, t / "r", "--config",
                                                        str(t / "c.yaml")))[-1], 2, "lrr"),
    ("train-batch-divisible", lambda w, t: train_argv(w, t / "r", "--objective", "ntp",
                                                      "--optim.grad_accum", "3"), 2, "divisible"),
    ("train-seq-len-ctx", lambda w, t: train_argv(w, t / "r", "--objective", "ntp",
                                                  "--data.seq_len", "64"), 2, "n_ctx"),
    ("train-mix-mode", lambda w, t: train_argv(w, t / "r", "--objective", "ntp",
                                               "--model.mix_mode", "add"), 2, "mix_mode"),
    ("train-kd-no-teacher", lambda w, t: train_argv(w, t / "r", "--objective", "kd"), 2,
     "--teacher"),
    ("train-val-split", lambda w, t: train_argv(w, t / "r", "--objective", "ntp",
                                                "--data.val_split", "test"), 2, "'test'"),
    ("train-seed-type", lambda w, t: train_argv(w, t / "r", "--seed", "x"), 2, "--seed"),
    ("train-bad-objective", lambda w, t: train_argv(w, t / "r", "--objective", "magic"), 2,
     "--objective"),
    ("train-labels-other-shards", lambda w, t: ["train", "--data", str(other_tokenizer_shards(
        w, t)), "--out", str(t / "r"), *TINY, "--objective", "cocomix", "--labels",
        str(w.labels)], 2, "tokenizer"),
    # train: run directories
    ("train-used-dir", lambda w, t: train_argv(w, copy(w.run, t / "run"), "--objective", "ntp",
                                               "--max-steps", "6"), 2, "--resume"),
    ("train-resume-other-objective", lambda w, t: train_argv(
        w, copy(w.run, t / "run"), "--objective", "mix_only", "--labels", str(w.labels),
        "--concept.k_attr", "2", "--max-steps", "6", "--resume"), 2, "objective"),
    ("train-resume-future-format", lambda w, t: train_argv(
        w, _run_with(w, t, _all_states_version), "--objective", "ntp", "--max-steps", "6",
        "--resume"), 2, "format_version"),
    ("train-resume-other-tokenizer", lambda w, t: ["train", "--data", str(
        other_tokenizer_shards(w, t)), "--out", str(copy(w.run, t / "run")), *TINY,
        "--objective", "ntp", "--max-steps", "9", "--resume"], 2, "tokenizer"),
    ("train-out-is-file", lambda w, t: train_argv(w, _file_as_out(t), "--objective", "ntp"), 2,
     "/f"),
    # behaviours that must succeed (exit 0, no error line)
    ("train-resume-torn-metrics", lambda w, t: (
        open(copy(w.run, t / "run") / "metrics.jsonl", "a").write('{"split": "tr'),
        train_argv(w, t / "run", "--objective", "ntp", "--max-steps", "6", "--resume"))[-1],
     0, None),
    ("train-resume-corrupt-index", lambda w, t: train_argv(w, _run_with(
        w, t, lambda ck: (ck / "index.json").write_text("{")), "--objective", "ntp",
        "--max-steps", "6", "--resume"), 0, None),
    ("train-force-used-dir", lambda w, t: train_argv(w, copy(w.run, t / "run"), "--objective",
                                                     "ntp", "--max-steps", "3", "--force"), 0,
     None),
    ("prepare-up-to-date", lambda w, t: (main(_prepare(t, "--out", str(t / "d"))),
                                         _prepare(t, "--out", str(t / "d")))[-1], 0, None),
    # pipeline and top level
    ("pipeline-bad-preset", lambda w, t: ["pipeline", "--preset", "huge", "--out", str(t)], 2,
     "--preset"),
    ("pipeline-unknown-override", lambda w, t: ["pipeline", "--preset", "micro", "--out",
                                                str(t / "p"), "--teacher.nosuch", "1"], 2,
     "nosuch"),
    ("pipeline-override-type", lambda w, t: ["pipeline", "--preset", "micro", "--out",
                                             str(t / "p"), "--student.overrides.d_model", "abc"],
     2, "d_model"),
    ("pipeline-eval-every-0", lambda w, t: ["pipeline", "--preset", "micro", "--out",
                                            str(t / "p"), "--eval_every", "0"], 2, "eval_every"),
    ("pipeline-bad-stop-after", lambda w, t: ["pipeline", "--out", str(t), "--stop-after", "x"],
     2, "--stop-after"),
    ("unknown-command", lambda w, t: ["frobnicate"], 2, "frobnicate"),
    ("unknown-flag", lambda w, t: ["prepare", "--out", str(t), "--nosuch"], 2, "--nosuch"),
]


@pytest.mark.parametrize("setup,code,needle", [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_is_one_line(world, tmp_path, capsys, setup, code, needle):
    argv = setup(world, tmp_path)
    capsys.readouterr()
    try:
        got = main(argv)
    except SystemExit as exit_:  # argparse
        got = exit_.code
    err = messages(capsys.readouterr().err)
    assert got == code, err
    if needle is None:
        assert "error" not in err.lower(), err
        return
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err and "error" in err, err


# ---- faults the matrix cannot express as argv alone ------------------------------------------
def test_disk_full_during_labels_is_one_line_not_sigbus(world, tmp_path, capsys, monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    assert main(labels_argv(world, tmp_path / "l")) == 2
    err = messages(capsys.readouterr().err)
    assert len(err.splitlines()) == 1 and "no space left" in err and "labels" in err, err


@pytest.mark.parametrize("code,needle", [(errno.EROFS, "read-only"),
                                         (errno.ENOSPC, "no space left"),
                                         (errno.EACCES, "permission denied")])
def test_os_errors_while_writing_name_the_file(world, tmp_path, capsys, monkeypatch, code,
                                               needle):
    def failing(src, dst):
        raise OSError(code, os.strerror(code), str(dst))

    monkeypatch.setattr(os, "replace", failing)
    assert main(_prepare(tmp_path, "--out", str(tmp_path / "d"))) == 2
    err = messages(capsys.readouterr().err)
    assert len(err.splitlines()) == 1 and needle in err and str(tmp_path / "d") in err, err


@pytest.mark.parametrize("kind", ["train", "labels", "prepare", "pipeline"])
def test_second_writer_gets_the_holders_pid(world, tmp_path, capsys, kind):
    out = tmp_path / "out"
    holder = Holder(out)
    try:
        argv = {"train": train_argv(world, out, "--objective", "ntp"),
                "labels": labels_argv(world, out),
                "prepare": _prepare(tmp_path, "--out", str(out)),
                "pipeline": ["pipeline", "--preset", "micro", "--out", str(out)]}[kind]
        assert main(argv) == 2
    finally:
        holder.stop()
    err = messages(capsys.readouterr().err)
    assert len(err.splitlines()) == 1 and f"PID {holder.proc.pid}" in err, err


def test_crafted_index_deletes_nothing_outside_the_run(world, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    run = copy(world.run, tmp_path / "run")
    idx = run / "checkpoints" / "index.json"
    blob = json.loads(idx.read_text())
    for name in ("../../victim", str(victim), "step_00000001/../../../victim"):
        blob["checkpoints"].insert(0, {"name": name, "step": 0, "metric": None})
    blob["best"] = {"name": "../../victim", "step": 0, "metric": 0.0}
    idx.write_text(json.dumps(blob))
    (run / "checkpoints" / "step_00000000").symlink_to(victim)  # an own name, pointing out
    assert main(train_argv(world, run, "--objective", "ntp", "--max-steps", "12",
                           "--resume")) == 0
    assert (victim / "precious.txt").read_text() == "keep me"
    assert (run / "checkpoints" / "step_00000000").resolve() == victim.resolve()
    idx = json.loads(idx.read_text())
    assert idx["latest"] == "step_00000012"
    assert all(e["name"].startswith("step_000000") for e in idx["checkpoints"])


def test_rerun_without_resume_never_mixes_runs(world, tmp_path):
    run = copy(world.run, tmp_path / "run")
    assert main(train_argv(world, run, "--objective", "ntp", "--max-steps", "3")) == 2
    assert main(train_argv(world, run, "--objective", "ntp", "--max-steps", "3",
                           "--force")) == 0
    mgr = CheckpointManager(run / "checkpoints")
    idx = mgr.index()
    assert [e["name"] for e in idx["checkpoints"]] == ["step_00000003"]
    assert mgr.latest() == run / "checkpoints/step_00000003" and mgr.best() == mgr.latest()
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and max(steps) == 3


def test_damaged_latest_checkpoint_falls_back_to_the_newest_complete_one(world, tmp_path, caplog):
    run = copy(world.run, tmp_path / "run")
    ck = run / "checkpoints"
    truncate(ck / "step_00000006" / "model.safetensors", 100)
    mgr = CheckpointManager(ck)
    assert mgr.latest() == ck / "step_00000003" and mgr.load().step == 3
    flip_byte(ck / "step_00000003" / "optim.safetensors", 200)  # same size, altered
    shutil.rmtree(ck / "step_00000006")
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        mgr.load()
    assert "altered" in caplog.text


def test_labels_window_error_leaves_nothing_that_blocks_the_fix(world, tmp_path, capsys):
    out = tmp_path / "l"
    assert main(labels_argv(world, out, "--window", "64")) == 2
    assert main(labels_argv(world, out)) == 0
    cache = LabelCache.open(out, shards=world.shards)
    ref = LabelCache.open(world.labels)
    assert (cache.array("train") == ref.array("train")).all()


def test_prepare_notices_a_corrupted_shard_and_rebuilds_it(world, tmp_path, capsys):
    argv = _prepare(tmp_path, "--out", str(tmp_path / "d"))
    assert main(argv) == 0
    good = (tmp_path / "d" / "train.bin").read_bytes()
    flip_byte(tmp_path / "d" / "train.bin", 10)
    assert main(argv) == 0
    assert "prepared:" in capsys.readouterr().out  # not "up to date"
    assert (tmp_path / "d" / "train.bin").read_bytes() == good
    TokenShards.open(tmp_path / "d", verify=True)


def test_debug_flag_shows_the_traceback(world, tmp_path, capsys):
    assert main(["--debug", *train_argv(world, tmp_path / "r", "--optim.grad_accum", "3")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("cocomix-lens train")


