"""The reliability matrix's rows for numbers and files: every numeric flag and setting under
-1, 0, huge, NaN and inf; every file a command reads under each fault."""

from __future__ import annotations

import argparse
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matrix_verdicts import PROBES, Row, raises, refused, succeeds


# ---- rows: numbers ------------------------------------------------------------------------------
def bound_rows() -> list[Row]:
    """One row per numeric flag of every command and per numeric config field: every probe
    (negative, zero, huge, NaN, inf) is accepted exactly when the declared range holds it."""
    from test_bounds import CONFIGS, numeric_fields, numeric_flags

    from cocomix_lens.bounds import RANGE
    from training.config import RunConfig
    from training.overrides import apply_overrides
    from training.pipeline_config import PipelineConfig

    rows = []
    for command, action in numeric_flags():
        def check(tmp, action=action):
            rng = getattr(action.type, "range", None)
            if rng is None:
                return "silently wrong: no declared range"
            for text in PROBES:
                v = float(text)
                fits = rng.contains(int(v) if rng.integer and v.is_integer() else v)
                try:
                    action.type(text)
                    if not fits:
                        return f"silently wrong: {text} accepted"
                except argparse.ArgumentTypeError as err:
                    if fits or "must be" not in str(err):
                        return f"vague error: {err}"
            return "clear error"
        rows.append(Row("numbers: flags", f"{command} {action.option_strings[0]}", check))
    pipe_keys = {k for k, _, _ in numeric_fields(PipelineConfig)}
    for cls in CONFIGS:
        for key, owner, f in numeric_fields(cls):
            def check(tmp, key=key, owner=owner, f=f, cls=cls):
                if f.metadata.get(RANGE) is None:
                    return "silently wrong: no declared range"
                if cls.__name__ == "CoCoMixConfig":
                    return raises(lambda: cls(**{key: math.nan}), ValueError, key)
                base = PipelineConfig() if key in pipe_keys else RunConfig()
                for text in ("nan", "inf", "-1e30", "1e30"):
                    try:
                        apply_overrides(base, {key: text})
                        return f"silently wrong: --{key} {text} accepted"
                    except ValueError as err:
                        if f"--{key}" not in str(err) or "fix" not in str(err):
                            return f"vague error: {err}"
                return "clear error"
            rows.append(Row("numbers: settings", f"{cls.__name__}: {key}", check))
    return rows


# ---- rows: files --------------------------------------------------------------------------------
FAULTS: dict[str, Callable[[Path], None]] = {
    "missing": lambda p: p.unlink() if p.is_file() else shutil.rmtree(p),
    "empty": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 2)]),
    "not UTF-8": lambda p: p.write_bytes(b"\xff\xfe" + p.read_bytes()),
    "wrong type": lambda p: p.write_text("[1, 2, 3]"),
    "directory": lambda p: (p.unlink(), p.mkdir()),
    "wrong field types": lambda p: _retype_first_number(p),
    "dangling symlink": lambda p: (p.unlink(), p.symlink_to(p.parent / "gone" / p.name)),
}
JSON_ONLY = ("not UTF-8", "wrong type", "wrong field types")  # faults of a JSON file's text
# A --config YAML file: its own faults (YAML takes most text, so "truncated" is a cut inside
# a mapping, which no YAML parser reads).
YAML_FAULTS: dict[str, Callable[[Path], None]] = {
    "missing": FAULTS["missing"],
    "empty": FAULTS["empty"],
    "truncated (invalid YAML)": lambda p: p.write_text("optim: {lr: 0.001\n"),
    "not UTF-8": FAULTS["not UTF-8"],
    "wrong type": lambda p: p.write_text("- 1\n- 2\n"),
    "wrong field types": lambda p: p.write_text("optim:\n  lr: fast\n"),
    "unknown field": lambda p: p.write_text("optim:\n  lrr: 0.001\n"),
    "directory": FAULTS["directory"],
    "dangling symlink": FAULTS["dangling symlink"],
}


def _retype_first_number(path: Path) -> None:
    """The first number in the JSON file (depth first) becomes the string "x"."""
    blob = json.loads(path.read_text())

    def walk(node: Any) -> bool:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(
            node, list) else ()
        for key, value in items:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                node[key] = "x"
                return True
            if walk(value):
                return True
        return False

    assert walk(blob), f"{path} holds no number"
    path.write_text(json.dumps(blob))


def file_rows(world: Any) -> list[Row]:
    """Every JSON / safetensors file a command reads, under each fault: one line naming it."""
    from helpers_faults import copy, labels_argv, train_argv

    def teacher_case(name: str, fault: str):
        def run(tmp):
            te = copy(world.teacher, tmp / "te")
            FAULTS[fault](te / name)
            argv = labels_argv(world, tmp / "l", "--teacher", str(te))
            if name == "tokenizer.json" and fault in ("missing", "directory", "dangling symlink"):
                return succeeds(argv)  # optional: config.json's sha256 still checks the data
            return refused(argv, name)
        return run

    def sae_case(name: str, fault: str):
        def run(tmp):
            sae = copy(world.sae, tmp / "sae")
            FAULTS[fault](sae / name)
            return refused(labels_argv(world, tmp / "l", "--sae", str(sae)), name)
        return run

    def shards_case(name: str, fault: str):
        def run(tmp):
            d = copy(world.shards, tmp / "s")
            FAULTS[fault](d / name)
            return refused(["train", "--data", str(d)] + train_argv(world, tmp / "r")[3:], name)
        return run

    def labels_case(name: str, fault: str):
        def run(tmp):
            d = copy(world.labels, tmp / "l")
            FAULTS[fault](d / name)
            return refused(train_argv(world, tmp / "r", "--objective", "cocomix", "--labels",
                                      str(d)), name)
        return run

    def summary_case(fault: str):
        def run(tmp):
            from cocomix_lens import Run

            r = copy(world.run, tmp / "run")
            FAULTS[fault](r / "summary.json")
            if fault in ("missing", "dangling symlink"):
                return raises(lambda: Run.open(r).summary, FileNotFoundError, "summary")
            return raises(lambda: Run.open(r).summary, ValueError, "summary.json")
        return run

    def state_case(fault: str):
        def run(tmp):  # the newest state.json damaged: resume falls back to the previous one
            r = copy(world.run, tmp / "run")
            FAULTS[fault](r / "checkpoints" / "step_00000006" / "state.json")
            verdict = succeeds(train_argv(world, r, "--objective", "ntp", "--max-steps", "6",
                                          "--resume"))
            return verdict
        return run

    def spec_case(fault: str):
        def run(tmp):
            from cocomix_lens.steering import SteeringSpec

            p = tmp / "spec.json"
            SteeringSpec().scale(1, 2.0).save(p)
            FAULTS[fault](p)
            exc = FileNotFoundError if fault in ("missing", "dangling symlink") else ValueError
            return raises(lambda: SteeringSpec.load(p), exc, "spec")
        return run

    def tokenizer_case(where: str, fault: str):
        """The shards' tokenizer.json (train reads it) or the run model's (generate does)."""
        def run(tmp):
            if where == "shards":
                d = copy(world.shards, tmp / "s")
                # 3 steps: the tokenizer is read before the first (the default 1,000 steps
                # took 12 s in the one row that trains: "symlink out")
                path, argv = d / "tokenizer.json", ["train", "--data", str(d)] + train_argv(
                    world, tmp / "r", "--objective", "ntp", "--max-steps", "3")[3:]
            else:
                d = copy(world.run, tmp / "run")
                path = d / "model" / "tokenizer.json"
                argv = ["generate", "--run", str(d), "--prompt", "a", "--max-new-tokens", "2"]
            if fault == "symlink out":  # to the same tokenizer outside the directory: read
                outside = tmp / "elsewhere.json"
                path.replace(outside)
                path.symlink_to(outside)
                return succeeds(argv)
            FAULTS[fault](path)
            return refused(argv, "tokenizer.json")
        return run

    def index_case(fault: str):
        def run(tmp):  # a damaged index is rebuilt from the checkpoint directories; a
            # directory in its place (which no write could replace) is refused
            from training.checkpoint import CheckpointManager

            r = copy(world.run, tmp / "run")
            FAULTS[fault](r / "checkpoints" / "index.json")
            argv = train_argv(world, r, "--objective", "ntp", "--max-steps", "9", "--resume")
            if fault == "directory":
                return refused(argv, "index.json")
            verdict = succeeds(argv)
            ck = CheckpointManager(r / "checkpoints")
            latest = ck.latest()
            if verdict == "correct" and (latest is None or latest.name != "step_00000009"):
                return f"silently wrong: latest {latest}"
            return verdict
        return run

    def yaml_case(fault: str):
        def run(tmp):
            p = tmp / "run.yaml"
            p.write_text("optim:\n  lr: 0.001\nseed: 3\n")
            YAML_FAULTS[fault](p)
            return refused(train_argv(world, tmp / "r", "--objective", "ntp", "--config",
                                      str(p)), "run.yaml")
        return run

    rows = []
    for fault in YAML_FAULTS:
        rows.append(Row("files: --config YAML", f"run.yaml {fault}", yaml_case(fault)))
    for fault in [*FAULTS, "symlink out"]:
        if fault in ("not UTF-8", "wrong field types"):
            continue  # tokenizer.json: covered by the teacher's rows
        for where in ("shards", "run model"):
            rows.append(Row(f"files: {where}", f"tokenizer.json {fault}",
                            tokenizer_case(where, fault)))
    for fault in FAULTS:
        what = "refused" if fault == "directory" else "rebuilt from the directories"
        rows.append(Row("files: checkpoint", f"index.json {fault} ({what})", index_case(fault)))
    for fault in FAULTS:
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            if name.endswith(".safetensors") and fault in JSON_ONLY:
                continue
            rows.append(Row("files: teacher", f"{name} {fault}", teacher_case(name, fault)))
        for name in ("cfg.json", "sae_weights.safetensors"):
            if name.endswith(".safetensors") and fault == "wrong field types":
                continue
            rows.append(Row("files: SAE", f"{name} {fault}", sae_case(name, fault)))
        rows.append(Row("files: shards", f"manifest.json {fault}",
                        shards_case("manifest.json", fault)))
        rows.append(Row("files: label cache", f"meta.json {fault}",
                        labels_case("meta.json", fault)))
        rows.append(Row("files: run", f"summary.json {fault}", summary_case(fault)))
        rows.append(Row("files: checkpoint", f"newest state.json {fault} (falls back)",
                        state_case(fault)))
        rows.append(Row("files: steering spec", f"spec.json {fault}", spec_case(fault)))
    return rows
