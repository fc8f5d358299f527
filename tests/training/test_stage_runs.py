"""training.stage_runs: the run configs of the pipeline's teacher and students."""

from __future__ import annotations

from training.pipeline_config import pipeline_preset
from training.stage_runs import student_run_config, teacher_run_config


def test_teacher_is_a_plain_gpt2_wider_than_the_student():
    p = pipeline_preset("tiny")
    cfg = teacher_run_config(p, "runs/x/data")
    arch = cfg.model_config(d_vocab=4096)
    student = pipeline_preset("tiny").student
    assert cfg.objective == "ntp" and arch.mix_mode == "none"
    assert arch.d_model == p.teacher.d_model > 128 and arch.n_layers == p.teacher.n_layers
    assert student.preset == "tiny"
    assert cfg.optim.max_steps == p.teacher.max_steps
    assert cfg.optim.warmup_steps == p.teacher.max_steps // 20
    assert (cfg.data.seq_len, cfg.data.batch_size, cfg.seed) == (p.seq_len, p.batch_size, p.seed)


def test_students_share_windows_budget_and_seed(tmp_path):
    p = pipeline_preset("micro")
    data, labels = tmp_path / "data", tmp_path / "labels"
    ntp, cocomix = (student_run_config(p, data, labels, s) for s in ("ntp", "cocomix"))
    assert ntp.seed == cocomix.seed
    assert ntp.data == cocomix.data and ntp.optim == cocomix.optim
    assert ntp.concept.labels == cocomix.concept.labels == str(tmp_path / "labels")
    # the NTP baseline drops the concept-head fields it does not have
    assert "insert_layer" not in ntp.model.overrides
    assert cocomix.model.overrides["insert_layer"] == 1
    assert ntp.model_config(d_vocab=300, mix_mode="none").d_model == 32  # as the trainer builds it


def test_concept_loss_weight_reaches_the_student_and_is_overridable(tmp_path):
    from training.pipeline_config import apply_overrides

    world = pipeline_preset("world")
    assert world.student.lam == 1.0 and pipeline_preset("tiny").student.lam == 0.1
    p = apply_overrides(world, {"student.lam": "0.25"})
    cfg = student_run_config(p, tmp_path / "data", tmp_path / "labels", "cocomix")
    assert cfg.concept.lam == 0.25
