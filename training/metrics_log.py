"""metrics.jsonl, plus TensorBoard and W&B when they are installed and enabled."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
from pathlib import Path
from typing import Any

from cocomix_lens.data.files import atomic_write_text
from cocomix_lens.rundir import LAYOUT
from training.config import LoggingSection

log = logging.getLogger(__name__)


class MetricsLog:
    """Appends one JSON object per record to RUN/metrics.jsonl (rank 0 only)."""

    def __init__(self, out_dir: Path, cfg: LoggingSection, enabled: bool = True,
                 run_config: dict[str, Any] | None = None):
        self.path = out_dir / LAYOUT.train.metrics
        self.enabled = enabled
        self._tb = self._wandb = None
        if not enabled:
            return
        if cfg.tensorboard:
            self._tb = _tensorboard(out_dir / "tensorboard")
        if cfg.wandb:
            self._wandb = _wandb(cfg.wandb_project, out_dir, run_config)

    def truncate_after(self, step: int) -> None:
        """Drop records past `step` (written after the checkpoint a run resumes from), and a
        torn last line a kill mid-append left."""
        if not self.enabled or not self.path.is_file():
            return
        keep = []
        for n, line in enumerate(self.path.read_text().splitlines(), 1):
            try:
                record = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                log.warning("%s line %d is not JSON (cut by a crash?); dropped", self.path, n)
                continue
            if isinstance(record, dict) and record.get("step", 0) <= step:
                keep.append(line)
        atomic_write_text(self.path, "".join(line + "\n" for line in keep))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {k: _jsonable(v) for k, v in record.items()}
        with open(self.path, "a") as f:
            f.write(json.dumps(clean) + "\n")
        step = int(record.get("step", 0))
        scalars = {k: v for k, v in clean.items()
                   if isinstance(v, (int, float)) and k != "step" and v is not None}
        prefix = str(record.get("split", "train"))
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(f"{prefix}/{k}", v, step)
        if self._wandb is not None:
            self._wandb.log({f"{prefix}/{k}": v for k, v in scalars.items()}, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no NaN/inf
    return v


def _tensorboard(directory: Path):
    if importlib.util.find_spec("tensorboard") is None:
        log.warning("logging.tensorboard is on but tensorboard is not installed; "
                    "pip install tensorboard (metrics.jsonl is still written)")
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(directory))


def _wandb(project: str, out_dir: Path, run_config: dict[str, Any] | None):
    if importlib.util.find_spec("wandb") is None:
        log.warning("logging.wandb is on but wandb is not installed; pip install wandb "
                    "(metrics.jsonl is still written)")
        return None
    import wandb

    return wandb.init(project=project, dir=str(out_dir), config=run_config or {})
