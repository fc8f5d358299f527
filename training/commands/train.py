"""`cocomix-lens train`: one training run from token shards (and concept labels).

    cocomix-lens train --objective ntp --data runs/data --out runs/ntp --max-steps 500
    cocomix-lens train --objective cocomix --data runs/data --labels runs/labels \\
        --teacher runs/teacher --sae runs/sae --out runs/cocomix --optim.lr 3e-4
    torchrun --nproc_per_node 2 -m training.cli train ...     # DDP (add --system.fsdp true)

Precedence: defaults < --config YAML < the named flags < dotted overrides (--section.key V).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from cocomix_lens.data.files import strict_json
from training.flags import SEED, field_flag

BUNDLED = Path(__file__).resolve().parents[1] / "configs"

HELP = "train a CoCoMix / NTP / KD / pause model (any objective of training.objectives)"

# Named flag dest -> dotted config key (a table, not an if-chain).
FLAG_KEYS = {"objective": "objective", "data": "data.dir", "preset": "model.preset",
             "max_steps": "optim.max_steps", "labels": "concept.labels",
             "teacher": "concept.teacher", "sae": "concept.sae", "seed": "seed",
             "threads": "system.threads"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from training.config import OptimSection, SystemSection
    from training.objectives import OBJECTIVES

    p.add_argument("--objective", choices=list(OBJECTIVES), help="training objective "
                   "(default cocomix): " + "; ".join(f"{k}: {o.help}" for k, o in
                                                      OBJECTIVES.items()))
    p.add_argument("--data", help="token shard directory (cocomix-lens prepare)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, metrics, model)")
    p.add_argument("--preset", help="model preset, e.g. tiny or gpt2-69m (default tiny)")
    p.add_argument("--max-steps", type=field_flag(OptimSection, "max_steps"),
                   help="optimizer steps")
    p.add_argument("--seed", type=SEED, help="seed of init, data order and RNGs")
    p.add_argument("--threads", type=field_flag(SystemSection, "threads"),
                   help="CPU threads of torch (default: $OMP_NUM_THREADS, else the idle cores; "
                        "on --resume the run's); bitwise results need the same count")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoints (starts fresh if there is none)")
    p.add_argument("--force", action="store_true",
                   help="start over in a used OUT (deletes its checkpoints and metrics)")
    p.add_argument("--labels", help="label cache directory (cocomix-lens labels)")
    p.add_argument("--teacher", help="teacher directory: on-the-fly labels (with --sae) and KD")
    p.add_argument("--sae", help="SAE directory (SAE-Lens format) for on-the-fly labels")
    p.add_argument("--config", help="YAML run config, or a bundled one (gpt2-69m, gpt2-386m, "
                   "gpt2-1.38b: the paper's settings); flags and dotted overrides win")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config as YAML and exit")
    p.set_defaults(_accepts_overrides=True)
    from training.config import describe

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "dotted overrides (--key VALUE or --key=VALUE; defaults in brackets):\n" + \
        "\n".join(describe())


def resolve_config(args: argparse.Namespace):
    from training.config import load_config
    from training.overrides import parse_overrides

    flags = {key: getattr(args, dest) for dest, key in FLAG_KEYS.items()
             if getattr(args, dest, None) is not None}
    dotted = parse_overrides(list(getattr(args, "_extra", []) or []))
    return load_config(config_path(args.config), overrides={**flags, **dotted})


def run(args: argparse.Namespace) -> int:
    from training.config import dump_yaml
    from training.trainer import ResumeRefused, check_run_config, train

    cfg = resolve_config(args)
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    check_run_config(cfg)  # before loading any data or teacher
    shards, labels, teacher = load_inputs(cfg)
    try:
        summary = train(cfg, data=shards, labels=labels, teacher=teacher, out_dir=args.out,
                        resume=args.resume, force=args.force)
    except ResumeRefused as err:
        raise ValueError(resume_fix(err, args)) from err
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun only rank 0 reports
    keys = ("objective", "steps", "val_loss", "val_ppl", "concept_top1", "concept_top4",
            "tokens_per_s")
    print(strict_json({k: summary.get(k) for k in keys if k in summary}))
    return 0


def resume_fix(err: Any, args: argparse.Namespace) -> str:
    """The trainer's refusal with its fix as the whole command to type (ResumeRefused)."""
    from training.cli import retyped

    if getattr(args, "_argv", None) is None:
        return str(err)
    named = {key: "--" + dest.replace("_", "-") for dest, key in FLAG_KEYS.items()}
    # `--model.d_mlp 64` sets model.overrides.d_mlp: either spelling names it
    short = {k: k.replace("model.overrides.", "model.", 1) for k in err.settings}
    flags = {key: ([named[key]] if key in named else []) + [
        f"--{k}" for k in (short[key], key, key.replace("_", "-"))] for key in err.settings}
    command = retyped(args._argv, {k: (flags[k], v) for k, v in err.settings.items()})
    return (f"{str(err).split('; fix:')[0]}; fix: type `{command}`, "
            "or train a new --out with the new ones")


def load_inputs(cfg: Any) -> tuple[Any, Any, Any]:
    """(shards, label cache or extractor or None, KD teacher or None) for a config."""
    from cocomix_lens.data import TokenShards
    from training.objectives import get_objective

    obj = get_objective(cfg.objective)
    if cfg.data.dir is None:
        raise ValueError("no training data: pass --data DIR (made by `cocomix-lens prepare`)")
    shards = TokenShards.open(cfg.data.dir, verify=True)  # every shard's sha256, streamed
    c = cfg.concept
    pair = teacher_model = None
    # The teacher + SAE pair computes labels on the fly, or checks a label cache's provenance
    # (without --sae a known teacher name such as gpt2 gets the paper's SAE).
    if c.teacher and (c.sae or (obj.needs_labels and not c.labels)):
        from cocomix_lens.concepts.teacher import load_teacher

        pair = load_teacher(c.teacher, c.sae)
        teacher_model = pair.model
    elif c.teacher and obj.needs_teacher:
        from cocomix_lens.concepts.teacher import load_teacher_model

        teacher_model = load_teacher_model(c.teacher)
    labels = _labels(cfg, shards, pair) if obj.needs_labels or c.labels else None
    return shards, labels, teacher_model if obj.needs_teacher else None


def config_path(name: str | None) -> str | None:
    """A YAML path, or the name of a bundled config (training/configs/NAME.yaml)."""
    if name is None or Path(name).exists():  # a directory: read_yaml names it
        return name
    bundled = BUNDLED / f"{name}.yaml"
    if bundled.is_file():
        return str(bundled)
    names = ", ".join(sorted(p.stem for p in BUNDLED.glob("*.yaml")))
    raise FileNotFoundError(f"--config {name} is neither a file nor a bundled config; fix: "
                            f"pass an existing YAML file or one of: {names}")


def _labels(cfg: Any, shards: Any, pair: Any) -> Any:
    c = cfg.concept
    if c.labels:
        from cocomix_lens.concepts.label_cache import LabelCache

        return LabelCache.open(c.labels, shards=shards,
                               teacher_sha=pair.model_sha256 if pair else None,
                               sae_sha=pair.sae_sha256 if pair else None)
    if pair is None:
        raise ValueError(f"objective {cfg.objective!r} needs concept labels: pass --labels DIR "
                         "(a label cache) or --teacher DIR --sae DIR (on-the-fly labels)")
    from cocomix_lens.concepts import ConceptExtractor
    from cocomix_lens.concepts.label_cache import check_teacher

    check_teacher(pair.model, shards.manifest, cfg.data.seq_len)  # as a label cache would
    return ConceptExtractor(pair.model, pair.sae)
