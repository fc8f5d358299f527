"""Linear probes of claim (h): the ridge probe finds a planted linear code and no more."""

import numpy as np
import pytest
import torch

from training.study.measure import SeedView, probe_hook, ridge_probe_accuracy


def planted(n: int, seed: int, informative: bool):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = np.random.default_rng(seed).integers(0, 3, n)
    if informative:  # class c shifts feature c by +4: linearly separable in practice
        x[torch.arange(n), torch.as_tensor(y)] += 4.0
    return x, y


def test_probe_reads_a_planted_linear_code():
    xt, yt = planted(600, 0, True)
    xv, yv = planted(300, 1, True)
    assert ridge_probe_accuracy(xt, yt, xv, yv, 3) > 0.97


def test_probe_is_at_chance_without_a_code():
    xt, yt = planted(600, 0, False)
    xv, yv = planted(3000, 1, False)
    assert ridge_probe_accuracy(xt, yt, xv, yv, 3) == pytest.approx(1 / 3, abs=0.05)


def test_probe_hook_is_the_stream_the_concept_head_reads():
    from cocomix_lens import CoCoMixConfig, CoCoMixModel

    kw = dict(d_model=32, n_layers=3, n_heads=2, d_vocab=50, n_ctx=16, insert_layer=2,
              n_concepts=20, concept_top_k=4)
    torch.manual_seed(0)
    plain = CoCoMixModel(CoCoMixConfig(**kw, mix_mode="none"))
    mixed = CoCoMixModel(CoCoMixConfig(**kw))
    assert probe_hook(plain, 2) == "blocks.2.hook_resid_pre"
    assert probe_hook(mixed, 2) == "concept.hook_in"
    x = torch.randint(0, 50, (1, 5))
    _, cache = mixed.run_with_cache(x, names_filter=lambda n: n in (
        "concept.hook_in", "blocks.1.hook_resid_post"))
    # token rows entering block 2 (before interleaving) are what the probe reads
    torch.testing.assert_close(cache["concept.hook_in"], cache["blocks.1.hook_resid_post"])


def test_seed_view_swaps_the_student_and_hides_the_catalogue():
    class FakeRun:
        student, teacher = "pipeline student", "teacher"

        def has(self, piece):
            return True

    view = SeedView(FakeRun(), "seed student")
    assert view.student == "seed student" and view.teacher == "teacher"
    assert not view.has("catalogue") and view.has("labels")


def test_steer_concepts_prefer_the_densest_screen_and_fall_back_to_label_frequency(tmp_path):
    import json
    from types import SimpleNamespace

    from training.study.measure import steer_concepts

    ids = np.array([[5, 1], [5, 2], [7, 1], [5, 3], [7, 0], [9, 9]])
    labels = SimpleNamespace(splits=["train", "val"], array=lambda split, key: ids)
    run = SimpleNamespace(path=tmp_path, labels=labels)
    assert steer_concepts(run, 2) == [5, 7]  # most often first label
    (tmp_path / "steering").mkdir()
    screen = [{"concept": 3, "clear": False}, {"concept": 11, "clear": True},
              {"concept": 4, "clear": True}, {"concept": 8, "clear": True}]
    (tmp_path / "steering" / "steering.json").write_text(json.dumps({"screen": screen}))
    assert steer_concepts(run, 2) == [11, 4]  # passed the screen, densest first
    (tmp_path / "steering" / "steering.json").write_text(json.dumps({"screen": screen[:1]}))
    assert steer_concepts(run, 2) == [5, 7]  # none passed: back to label frequency
