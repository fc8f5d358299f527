"""`cocomix-lens train`: config precedence, one-line errors, KD and label-cache runs."""

import json

import numpy as np
import pytest
import torch
from helpers_concepts import tiny_hooked_transformer, tiny_sae, write_shards

from cocomix_lens import CoCoMixConfig, CoCoMixModel
from cocomix_lens.concepts import ConceptExtractor
from cocomix_lens.concepts.label_cache import LabelCache
from training.cli import main

TINY = ["--data.seq_len", "16", "--data.batch_size", "4", "--model.d_model", "32",
        "--model.n_layers", "2", "--model.n_heads", "2", "--model.n_ctx", "32",
        "--model.insert_layer", "1", "--logging.progress", "false",
        "--logging.eval_batches", "1", "--system.device", "cpu"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    rng = np.random.default_rng(0)
    return write_shards(tmp_path_factory.mktemp("cmd") / "shards",
                        {"train": rng.integers(0, 39, 400), "val": rng.integers(0, 39, 120)})


def test_precedence_yaml_then_flags_then_dotted(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("objective: ntp\noptim:\n  lr: 1.0e-3\n  max_steps: 9\nseed: 4\n")
    assert main(["train", "--out", str(tmp_path), "--config", str(cfg), "--max-steps", "5",
                 "--optim.lr", "2e-4", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.0002" in out and "max_steps: 5" in out and "seed: 4" in out


def test_errors_are_one_line_with_exit_code_2(shards, tmp_path, capsys):
    code = main(["train", "--objective", "cocomix", "--data", str(shards.root), "--out",
                 str(tmp_path), *TINY])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "needs concept labels" in err[-1]
    assert main(["train", "--out", str(tmp_path), "--optim.lr", "x"]) == 2
    assert "not a valid float" in capsys.readouterr().err


def test_kd_from_a_teacher_directory(shards, tmp_path, capsys):
    torch.manual_seed(0)
    teacher = CoCoMixModel(CoCoMixConfig(d_model=32, n_layers=2, n_heads=2, d_vocab=40,
                                         n_ctx=32, mix_mode="none"))
    teacher.save_pretrained(tmp_path / "teacher")
    code = main(["train", "--objective", "kd", "--data", str(shards.root), "--out",
                 str(tmp_path / "run"), "--teacher", str(tmp_path / "teacher"),
                 "--max-steps", "2", *TINY])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["objective"] == "kd" and report["steps"] == 2


def test_cocomix_from_a_label_cache_directory(shards, tmp_path, capsys):
    extractor = ConceptExtractor(tiny_hooked_transformer(), tiny_sae(d_sae=48))
    LabelCache.build(tmp_path / "cache", shards, extractor, teacher_sha="t", sae_sha="s", k=4,
                     window=16, batch_size=4)
    code = main(["train", "--objective", "cocomix", "--data", str(shards.root), "--out",
                 str(tmp_path / "run"), "--labels", str(tmp_path / "cache"), "--max-steps", "2",
                 "--model.n_concepts", "48", *TINY])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= report["concept_top4"] <= 1


def test_cocomix_with_on_the_fly_labels_from_teacher_and_sae_dirs(shards, tmp_path, capsys):
    torch.manual_seed(0)
    teacher = CoCoMixModel(CoCoMixConfig(d_model=16, n_layers=3, n_heads=2, d_vocab=40,
                                         n_ctx=32, mix_mode="none"))
    teacher.save_pretrained(tmp_path / "teacher")
    tiny_sae(d_in=16, d_sae=48).save_model(str(tmp_path / "sae"))
    code = main(["train", "--objective", "cocomix", "--data", str(shards.root), "--out",
                 str(tmp_path / "run"), "--teacher", str(tmp_path / "teacher"), "--sae",
                 str(tmp_path / "sae"), "--max-steps", "2", *TINY])  # n_concepts from the SAE
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["steps"] == 2 and 0 <= report["concept_top1"] <= 1


def _fix_command(err: str) -> list[str]:
    """The command a one-line error says to type, as argv (without `cocomix-lens`)."""
    import shlex

    assert "\n" not in err.strip()
    words = shlex.split(err.split("fix: type `")[1].split("`")[0])
    assert words[0] == "cocomix-lens"
    return words[1:]


def test_a_refused_resume_prints_the_whole_command_that_resumes_it(shards, tmp_path, capsys):
    argv = ["train", "--objective", "ntp", "--data", str(shards.root), "--out", str(tmp_path),
            "--max-steps", "2", *TINY, "--checkpoint.every", "1"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main([*argv, "--resume", "--optim.lr=0.5", "--model.d_mlp", "64"]) == 2
    fix = _fix_command(capsys.readouterr().err)  # both settings restored in one command
    assert fix == [*argv, "--resume", "--optim.lr", "0.0006", "--model.d_mlp", "128"]
    assert main([*argv, "--resume", "--optim.lr=0.5"]) == 2
    fix = _fix_command(capsys.readouterr().err)
    assert fix == [*argv, "--resume", "--optim.lr", "0.0006"]
    base = argv[:7] + argv[9:]  # without --max-steps 2
    assert main([*base, "--max-steps", "1", "--resume"]) == 2  # below the 2 steps done
    assert _fix_command(capsys.readouterr().err) == [*base, "--resume", "--max-steps", "2"]
    assert main(fix) == 0  # the printed command runs
