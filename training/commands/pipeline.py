"""`cocomix-lens pipeline`: the offline demo, prepare -> teacher -> SAE -> labels -> students.

    cocomix-lens pipeline --preset world --out runs/demo     # what `make demo` runs
    cocomix-lens pipeline --preset tiny --out runs/wiki --student.max_steps 600
    cocomix-lens pipeline --preset micro --out /tmp/smoke --corpus text --path my_docs/

Re-running the same command skips finished stages and resumes an interrupted one.
Dotted overrides (--section.key VALUE) set fields of training.pipeline_config.PipelineConfig.
"""

from __future__ import annotations

import argparse

from training.flags import field_flag

HELP = "run the offline pipeline: data, teacher, SAE, label cache, NTP and CoCoMix students"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from training.pipeline import STAGES
    from training.pipeline_config import PRESETS, DataStage

    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS),
                   help="world (the demo: a synthetic corpus with known concepts, under "
                        "15 min on 2 CPU cores), tiny (Wikipedia, the real-text option) or "
                        "micro (seconds, for smoke tests)")
    p.add_argument("--out", required=True, help="run directory (created or resumed)")
    p.add_argument("--corpus", help="corpus source: wiki (default), text, hf or world")
    p.add_argument("--path", help="text corpus: a .txt/.jsonl file or a directory")
    p.add_argument("--max-docs", type=field_flag(DataStage, "max_docs"),
                   help="use only the first N documents")
    p.add_argument("--device", help="torch device (default cpu)")
    p.add_argument("--stop-after", choices=list(STAGES), help="stop after this stage")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(_accepts_overrides=True)


FLAG_KEYS = {"corpus": "data.corpus", "path": "data.path", "max_docs": "data.max_docs",
             "device": "device"}


def run(args: argparse.Namespace) -> int:
    from training.overrides import parse_overrides
    from training.pipeline import run_pipeline
    from training.pipeline_config import apply_overrides, pipeline_preset

    overrides = {key: str(getattr(args, dest)) for dest, key in FLAG_KEYS.items()
                 if getattr(args, dest, None) is not None}
    if args.quiet:
        overrides["progress"] = "false"
    overrides.update(parse_overrides(list(getattr(args, "_extra", []) or [])))
    cfg = apply_overrides(pipeline_preset(args.preset), overrides)
    summary = run_pipeline(cfg, args.out, stop_after=args.stop_after)
    stages = ", ".join(f"{k} {v['wall_s']:.0f}s{' (skipped)' if v['skipped'] else ''}"
                       for k, v in summary["stages"].items())
    print(f"pipeline: {args.out} [{stages}]; report: {args.out}/REPORT.md")
    return 0
