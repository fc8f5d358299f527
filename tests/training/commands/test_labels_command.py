"""`cocomix-lens labels` end to end on a local teacher checkpoint and SAE directory."""

import numpy as np
from helpers_concepts import tiny_sae, write_shards
from helpers_model import tiny_model

from cocomix_lens.concepts import ConceptExtractor, LabelCache, module_sha256, sae_sha256
from training.cli import main


def test_labels_command_builds_a_cache_that_training_can_open(tmp_path, capsys):
    teacher = tiny_model(mix_mode="none")
    teacher.save_pretrained(tmp_path / "teacher")
    sae = tiny_sae(d_in=teacher.cfg.d_model)
    sae.save_model(tmp_path / "sae")
    shards = write_shards(tmp_path / "data", {"train": np.arange(37) % 40,
                                              "val": np.arange(16) % 40})
    argv = ["labels", "--data", str(tmp_path / "data"), "--teacher", str(tmp_path / "teacher"),
            "--sae", str(tmp_path / "sae"), "--out", str(tmp_path / "labels"), "--k", "3",
            "--window", "8", "--batch-size", "2"]
    assert main(argv) == 0
    assert "train=37 tokens" in capsys.readouterr().out
    cache = LabelCache.open(tmp_path / "labels", shards=shards,
                            teacher_sha=module_sha256(teacher), sae_sha=sae_sha256(sae))
    ids, _ = ConceptExtractor(teacher, sae).labels(
        shards.batch("train", [8], 8)[0], k=3, targets=shards.batch("train", [8], 8)[1])
    assert (cache.labels("train", [8], 8) == ids).all()

    assert main(argv) == 0  # already complete: nothing to do, same answer
    assert main(argv[:-2] + ["--method", "activation"]) == 2
    assert "built differently: --method 'attribution'" in capsys.readouterr().err
