"""`cocomix-lens pipeline`: the offline demo, prepare -> teacher -> SAE -> labels -> students.

    cocomix-lens pipeline --preset world --out runs/demo     # what `make demo` runs
    cocomix-lens pipeline --preset tiny --out runs/wiki --student.max_steps 600
    cocomix-lens pipeline --preset small --corpus book.txt --separator "\n\n" --out runs/book

Re-running the same command skips finished stages and resumes an interrupted one.
Dotted overrides (--section.key VALUE) set fields of training.pipeline_config.PipelineConfig.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from training.flags import field_flag

HELP = "run the offline pipeline: data, teacher, SAE, label cache, NTP and CoCoMix students"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from training.config import describe
    from training.pipeline import STAGES
    from training.pipeline_config import PRESETS, DataStage, PipelineConfig

    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS),
                   help="world (the demo: a synthetic corpus with known concepts), small "
                        "(your own text, up to a few MB), tiny (Wikipedia, the real-text "
                        "option) or micro (seconds, for smoke tests)")
    p.add_argument("--out", required=True, help="run directory (created or resumed)")
    p.add_argument("--corpus", help="wiki (default), text, hf or world; or a path: a .txt or "
                   ".jsonl file or a directory of them (= --corpus text --path PATH)")
    p.add_argument("--path", help="text corpus: a .txt/.jsonl file or a directory")
    p.add_argument("--separator", help="text: split .txt files into documents on this string "
                   "(e.g. '\\n\\n': paragraphs; escapes are decoded)")
    p.add_argument("--max-docs", type=field_flag(DataStage, "max_docs"),
                   help="use only the first N documents")
    p.add_argument("--device", help="torch device (default cpu)")
    p.add_argument("--threads", type=field_flag(PipelineConfig, "threads"),
                   help="CPU threads of torch (default: $OMP_NUM_THREADS, else the idle "
                        "cores); bitwise results need the same count")
    p.add_argument("--stop-after", choices=list(STAGES), help="stop after this stage")
    p.add_argument("--quiet", action="store_true",
                   help="print only errors and the final summary (no logs, no progress bars)")
    p.set_defaults(_accepts_overrides=True)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = ("dotted settings (--key VALUE; the tiny preset's defaults in brackets; "
                "--preset sets its own):\n" + "\n".join(describe(PipelineConfig)) +
                "\n  --student.overrides.<field> (preset)  a CoCoMixConfig field of both "
                "students, e.g. --student.overrides.d_model 64.")


FLAG_KEYS = {"corpus": "data.corpus", "path": "data.path", "max_docs": "data.max_docs",
             "separator": "data.separator", "device": "device", "threads": "threads"}


def corpus_flags(corpus: str | None, path: str | None) -> tuple[str | None, str | None]:
    """(--corpus, --path) with a path given as --corpus read as `--corpus text --path PATH`."""
    from training.corpus import SOURCES
    from training.corpus.text import SUFFIXES

    if corpus is None or corpus in SOURCES:
        return corpus, path
    if path is not None:
        raise ValueError(f"--corpus {corpus} is not a corpus name and --path is given too; "
                         f"fix: pass --corpus text --path {path}, or only --corpus {corpus}")
    if not (Path(corpus).exists() or Path(corpus).suffix in SUFFIXES):
        raise ValueError(f"--corpus {corpus} is neither a corpus ({', '.join(sorted(SOURCES))}) "
                         "nor an existing .txt/.jsonl file or directory; fix: check the name "
                         "or path")
    return "text", corpus


def run(args: argparse.Namespace) -> int:
    from training.overrides import parse_overrides
    from training.pipeline import run_pipeline
    from training.pipeline_config import apply_overrides, pipeline_preset

    args.corpus, args.path = corpus_flags(args.corpus, args.path)
    overrides = {key: str(getattr(args, dest)) for dest, key in FLAG_KEYS.items()
                 if getattr(args, dest, None) is not None}
    if args.quiet:
        overrides["progress"] = "false"
        logging.getLogger().setLevel(logging.WARNING)
    overrides.update(parse_overrides(list(getattr(args, "_extra", []) or [])))
    cfg = apply_overrides(pipeline_preset(args.preset), overrides)
    from training.trainer import ResumeRefused

    try:
        summary = run_pipeline(cfg, args.out, stop_after=args.stop_after)
    except ResumeRefused as err:
        raise ValueError(resume_fix(err, args)) from err
    stages = ", ".join(f"{k} {v['wall_s']:.0f}s{' (skipped)' if v['skipped'] else ''}"
                       for k, v in summary["stages"].items())
    print(f"pipeline: {args.out} [{stages}]; report: {args.out}/REPORT.md")
    print(f"open the app: cocomix-lens app --run {args.out}")
    return 0


def resume_fix(err: Any, args: argparse.Namespace) -> str:
    """The pipeline's refusal with its fix as the whole command to type: what was typed, with
    each refused setting's flag (in any spelling) replaced by the run's value."""
    from training.cli import retyped

    if getattr(args, "_argv", None) is None:
        return str(err)
    named = {key: "--" + dest.replace("_", "-") for dest, key in FLAG_KEYS.items()}

    def spellings(key: str) -> list[str]:  # the one to write first
        if key.startswith("corpus_options."):
            return ["--" + key.split(".", 1)[1].replace("_", "-")]
        dotted = [f"--{key}", f"--{key.replace('_', '-')}"]
        if key == "data.path":  # `--corpus FILE` sets it too (with data.corpus text)
            return ["--path", *dotted, "--corpus"]
        return ([named[key]] if key in named else []) + dotted

    flags = {k: (spellings(k), v) for k, v in err.settings.items()}
    command = retyped(args._argv, flags)
    return (f"{str(err).split('; fix:')[0]}; fix: type `{command}` to resume it as it was, "
            "or pass another --out to train with the new settings")
