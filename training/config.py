"""Run configuration: nested dataclasses, YAML files and dotted CLI overrides.

Values are typed and checked by `training.overrides`, the engine `pipeline` uses too.

`RunConfig` holds everything about a training run except the architecture, which stays in
`cocomix_lens.CoCoMixConfig` (chosen by `model.preset` plus `model.overrides`). Every field has
a docstring; `field_docs` reads them so CLI help and error messages quote them.

    cfg = load_config("run.yaml", overrides=["--optim.lr", "3e-4", "--model.d_model=64"])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cocomix_lens import CoCoMixConfig
from cocomix_lens.bounds import SEED_MAX, bounded
from cocomix_lens.data.files import read_yaml
from training.flags import field_docs
from training.overrides import apply_overrides, build, parse_overrides, schema_field


@dataclass
class ModelSection:
    """Which architecture to train."""

    preset: str = "tiny"
    """Name of a `CoCoMixConfig` preset (tiny, gpt2-69m, gpt2-386m, gpt2-1.38b, ...)."""
    overrides: dict[str, Any] = schema_field(CoCoMixConfig, shorthand=True)
    """CoCoMixConfig fields replacing the preset's (`--model.d_model 64` lands here)."""


@dataclass
class OptimSection:
    """AdamW and its learning-rate schedule (paper: Tack et al. 2025, Table 5)."""

    lr: float = bounded(6e-4, 0, 10, lo_open=True)
    """Peak learning rate (paper: 6e-4 / 3e-4 / 2e-4 for 69M / 386M / 1.38B)."""
    betas: tuple[float, float] = bounded((0.9, 0.95), 0, 0.9999, integer=False)
    """AdamW (beta1, beta2)."""
    eps: float = bounded(1e-8, 0, 1, lo_open=True)
    """AdamW epsilon."""
    weight_decay: float = bounded(0.1, 0, 10)
    """Decoupled weight decay on weight matrices only (never norms, biases or embeddings)."""
    warmup_steps: int | None = bounded(None, 0, 10**9, integer=True)
    """Linear warmup steps; None means ceil(max_steps / 300) like the paper."""
    min_lr_ratio: float = bounded(0.1, 0, 1)
    """The cosine decays to this fraction of the peak lr at max_steps."""
    grad_clip: float = bounded(1.0, 0, 1e6)
    """Clip the global gradient norm to this value (0 disables clipping)."""
    grad_accum: int = bounded(1, 1, 4096)
    """Micro-batches per optimizer step (the global batch is split across them)."""
    max_steps: int = bounded(1000, 1, 10**9)
    """Optimizer steps of the run."""
    schedule_steps: int | None = bounded(None, 1, 10**9, integer=True)
    """Steps the warmup and cosine are laid out over; None: max_steps. A --resume with a
    larger --max-steps sets it to the run's own, so the lr does not jump back up: it stays at
    min_lr_ratio x lr past the original end."""


@dataclass
class DataSection:
    """Token shards and how windows are drawn from them."""

    dir: str | None = None
    """Directory written by `cocomix-lens prepare` (train.bin, val.bin, manifest.json)."""
    seq_len: int = bounded(128, 1, 1 << 20)
    """Tokens per training window (the model also reads one shifted target per token)."""
    batch_size: int = bounded(16, 1, 1 << 16)
    """Global batch in windows per optimizer step (all ranks and micro-batches together)."""
    val_split: str = "val"
    """Split used for evaluation."""


@dataclass
class ConceptSection:
    """Concept labels and the auxiliary losses that use them."""

    lam: float = bounded(0.1, 0, 1000)
    """Weight of the concept loss (paper: 0.1)."""
    k_attr: int = bounded(4, 1, 1024)
    """Labels per position (top attribution scores; paper: 4)."""
    labels: str | None = None
    """Label cache directory (`cocomix-lens labels`); None: on the fly from teacher + sae."""
    teacher: str | None = None
    """Teacher for on-the-fly labels and KD: a save_pretrained directory or a name (gpt2)."""
    sae: str | None = None
    """SAE directory (SAE-Lens format); None with teacher gpt2 means the paper's OpenAI SAE."""
    kd_weight: float = bounded(0.1, 0, 1000)
    """Weight of KL(teacher || student) in the kd objective (paper: 0.1)."""


@dataclass
class LoggingSection:
    """Metrics, evaluation cadence and progress display."""

    log_every: int = bounded(10, 1, 10**9)
    """Write training metrics to metrics.jsonl every this many steps."""
    eval_every: int = bounded(100, 1, 10**9)
    """Evaluate on the validation split every this many steps (and at the end)."""
    eval_batches: int = bounded(4, 1, 10**6)
    """Validation batches (of data.batch_size windows) per evaluation."""
    tensorboard: bool = False
    """Also log to TensorBoard (only if the tensorboard package is installed)."""
    wandb: bool = False
    """Also log to Weights & Biases (only if wandb is installed)."""
    wandb_project: str = "cocomix-lens"
    """W&B project name."""
    progress: bool = True
    """Show a tqdm progress bar with the loss and tokens/s."""


@dataclass
class CheckpointSection:
    """When and how many checkpoints to keep."""

    every: int = bounded(100, 1, 10**9)
    """Save a checkpoint every this many steps (and at the end)."""
    keep_last: int = bounded(2, 1, 10**6)
    """Most recent checkpoints kept on disk."""
    keep_best: bool = True
    """Also keep the checkpoint with the lowest validation loss."""


@dataclass
class SystemSection:
    """Devices, precision and parallelism."""

    device: str = "auto"
    """cpu, cuda, cuda:1 ... or auto (cuda when available, else cpu)."""
    bf16: bool = True
    """bf16 autocast on GPU (ignored on CPU, where runs stay fp32 and bitwise reproducible)."""
    compile: bool = False
    """torch.compile the model (GPU only)."""
    fsdp: bool = False
    """Under torchrun, shard with FSDP instead of replicating with DDP."""
    threads: int | None = bounded(None, 1, 1024, integer=True)
    """CPU threads of torch (per process). None: $OMP_NUM_THREADS when set, else the cores
    the machine's load leaves idle (at least 1); on --resume, the run's own. The count used is
    written back here in config.yaml: results are bitwise reproducible for the same count."""


@dataclass
class RunConfig:
    """A complete training run."""

    objective: str = "cocomix"
    """Training objective: see training.objectives.OBJECTIVES."""
    seed: int = bounded(0, 0, SEED_MAX)
    """Seeds model init, data order and every RNG."""
    model: ModelSection = field(default_factory=ModelSection)
    """Architecture."""
    optim: OptimSection = field(default_factory=OptimSection)
    """Optimizer and schedule."""
    data: DataSection = field(default_factory=DataSection)
    """Data."""
    concept: ConceptSection = field(default_factory=ConceptSection)
    """Concept labels and loss weights."""
    logging: LoggingSection = field(default_factory=LoggingSection)
    """Logging and evaluation."""
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    """Checkpoints."""
    system: SystemSection = field(default_factory=SystemSection)
    """Devices and parallelism."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> RunConfig:
        return build(cls, d, source)

    def model_config(self, **defaults: Any) -> CoCoMixConfig:
        """The architecture: preset, then `defaults` (e.g. d_vocab of the data), then overrides."""
        return CoCoMixConfig.preset(self.model.preset, **{**defaults, **self.model.overrides})


CONFIG_FIX = "correct the file (a mapping of sections, as `--print-config` prints) or pass a " \
    "bundled config name"


def load_config(path: str | Path | None = None, overrides: list[str] | dict | None = None,
                base: RunConfig | None = None) -> RunConfig:
    """`base` (default RunConfig()) updated by a YAML file, then by dotted overrides."""
    cfg = base or RunConfig()
    if path is not None:
        raw = read_yaml(path, CONFIG_FIX)
        cfg = RunConfig.from_dict(_deep_merge(cfg.to_dict(), raw), source=str(path))
    if overrides:
        parsed = parse_overrides(overrides) if isinstance(overrides, list) else overrides
        cfg = apply_overrides(cfg, parsed)
    return cfg


def _deep_merge(base: dict, new: dict) -> dict:
    out = dict(base)
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "overrides":
            out[k] = _deep_merge(out[k], v)
        elif k == "overrides" and isinstance(v, dict):
            out[k] = {**out.get(k, {}), **v}
        else:
            out[k] = v
    return out


def describe(cls: type = RunConfig, prefix: str = "") -> list[str]:
    """One line per settable key: `--section.key (default)  docstring` (CLI help)."""
    lines, defaults = [], cls()
    for f in dataclasses.fields(cls):
        value, doc = getattr(defaults, f.name), field_docs(cls).get(f.name, "")
        if dataclasses.is_dataclass(value):
            lines += describe(type(value), f"{prefix}{f.name}.")
        elif not isinstance(value, dict):  # model.overrides is set field by field
            lines.append(f"  --{prefix}{f.name} ({value!r})  {doc}")
    if cls is RunConfig:
        lines.append("  --model.<field> (preset)  a CoCoMixConfig field, e.g. --model.d_model 64.")
    return lines


def dump_yaml(cfg: RunConfig) -> str:
    """The config as YAML (tuples as lists), loadable by `load_config`."""
    return yaml.safe_dump(_plain(cfg.to_dict()), sort_keys=False)


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x
