"""training.pipeline_config: presets and dotted overrides."""

from __future__ import annotations

import pytest

from training.pipeline_config import PRESETS, apply_overrides, pipeline_preset


def test_presets_build_and_tiny_is_the_default_shape():
    assert sorted(PRESETS) == ["micro", "small", "tiny", "world"]
    tiny = pipeline_preset("tiny")
    assert tiny.teacher.d_model > 128  # wider than the tiny student
    assert tiny.student.max_steps * tiny.batch_size * tiny.seq_len == 400 * 16 * 128
    # The world demo (make demo in 15 min from a fresh clone on 2 idle cores, docs/world.md):
    # the same student shapes trained 1,000 steps (2.5x tiny's), teacher 1,000 steps, a
    # narrower teacher, a smaller SAE on block 2 of 4.
    world = pipeline_preset("world")
    assert world.data.corpus == "world" and world.sae.d_sae == 512
    assert world.sae.hook == "blocks.2.hook_resid_post" and world.teacher.n_layers == 4
    assert world.student.preset == tiny.student.preset
    assert world.student.max_steps == world.teacher.max_steps == 1000
    assert world.student.max_steps * 2 == 5 * tiny.student.max_steps
    assert world.teacher.d_model < tiny.teacher.d_model


def test_overrides_are_coerced_to_the_field_types():
    cfg = apply_overrides(pipeline_preset("tiny"), {
        "teacher.max_steps": "7", "sae.lr": "5e-4", "progress": "false",
        "data.max_docs": "none", "data.path": "docs/", "student.overrides.d_model": "64"})
    assert cfg.teacher.max_steps == 7 and cfg.sae.lr == pytest.approx(5e-4)
    assert cfg.progress is False and cfg.data.max_docs is None and cfg.data.path == "docs/"
    assert cfg.student.overrides == {"d_model": 64}
    assert pipeline_preset("tiny").teacher.max_steps == 600  # presets are fresh copies


@pytest.mark.parametrize("key, value, message", [
    ("teacher.depth", "3", "unknown pipeline override --teacher.depth"),
    ("teacher", "3", "names a section"),
    ("seed.x", "3", "is a value, not a section"),
    ("teacher.max_steps", "many", "is not a valid int"),
])
def test_bad_overrides_are_one_line_errors(key, value, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(pipeline_preset("micro"), {key: value})


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match=r"choose one of \['micro', 'small', 'tiny', 'world'\]"):
        pipeline_preset("huge")
