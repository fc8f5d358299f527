"""metrics.jsonl: one record per line, non-finite values kept readable, truncation on resume."""

import json
import logging

from training.config import LoggingSection
from training.metrics_log import MetricsLog


def test_records_truncation_and_non_finite_values(tmp_path):
    log = MetricsLog(tmp_path, LoggingSection())
    for step in (1, 2, 3):
        log.write({"split": "train", "step": step, "loss": 1.0 / step})
    log.write({"split": "val", "step": 3, "val_loss": float("nan")})
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 3] and rows[-1]["val_loss"] == "nan"
    log.truncate_after(2)  # a run resumed from step 2 rewrites what came after
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and rows[1]["loss"] == 0.5


def test_disabled_on_other_ranks_and_missing_backends_only_warn(tmp_path, caplog, monkeypatch):
    MetricsLog(tmp_path, LoggingSection(), enabled=False).write({"step": 1})
    assert not (tmp_path / "metrics.jsonl").exists()
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with caplog.at_level(logging.WARNING):
        log = MetricsLog(tmp_path, LoggingSection(tensorboard=True, wandb=True))
    assert "tensorboard is not installed" in caplog.text and "wandb is not installed" in caplog.text
    log.write({"step": 1, "loss": 2.0})
    assert (tmp_path / "metrics.jsonl").is_file()
