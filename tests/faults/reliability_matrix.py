"""The reliability matrix: every numeric flag and setting, every file reader, and the
scenarios of the reliability issues, each run and given a verdict.

    python tests/faults/reliability_matrix.py --write docs/reliability_matrix.md     # make faults

Verdicts: `correct` (did the right thing), `clear error` (exit 2 and ONE line naming the
thing at fault and the fix, or a one-line library exception), `vague error` (an error, but
several lines or not naming what it should), `traceback`, `silently wrong` (exit 0 where a
refusal was due, or a wrong result). tests/faults/test_reliability_matrix.py asserts every row is
`correct` or `clear error`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import shutil
import sys
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# This folder (helpers_faults) and tests/ (test_bounds, the shared helpers), as pytest puts them.
FAULTS = Path(__file__).resolve().parent
for folder in (FAULTS.parent, FAULTS):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

GOOD = ("correct", "clear error")
PROBES = ("-1", "0", "1e30", "nan", "inf")


@dataclass
class Row:
    area: str
    case: str
    run: Callable[[Path], Any]  # returns a verdict string, or raises
    verdict: str = ""
    note: str = ""


# ---- running a command or a call --------------------------------------------------------------
def cli(argv: list[str]) -> tuple[int, str, str]:
    """(exit code, stderr without progress bars, stdout) of `cocomix-lens argv`, in-process."""
    from helpers_faults import messages

    from training.cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return int(code or 0), messages(err.getvalue()), out.getvalue()


def refused(argv: list[str], *needles: str) -> str:
    """Verdict of a command that must refuse with one line naming every needle."""
    code, err, _ = cli(argv)
    if code == 0:
        return "silently wrong"
    if "Traceback" in err:
        return "traceback"
    one = len(err.splitlines()) == 1 and "unexpected" not in err
    return "clear error" if one and all(n in err for n in needles) and "fix" in err \
        else f"vague error: {err[:160]}"


def succeeds(argv: list[str], check: Callable[[str], bool] = lambda out: True) -> str:
    code, err, out = cli(argv)
    if code != 0:
        return f"vague error: {err[:160]}" if "Traceback" not in err else "traceback"
    return "correct" if check(out) else "silently wrong"


def raises(fn: Callable[[], Any], exc: type, *needles: str) -> str:
    """Verdict of a library call that must raise `exc` in one line naming every needle."""
    try:
        fn()
    except exc as err:
        text = str(err)
        ok = "\n" not in text and all(n in text for n in needles) and "fix" in text
        return "clear error" if ok else f"vague error: {text[:160]}"
    except Exception as err:  # noqa: BLE001 — the verdict names it
        return f"traceback: {type(err).__name__}: {str(err)[:120]}"
    return "silently wrong"


def holds(ok: bool) -> str:
    return "correct" if ok else "silently wrong"


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
}


def file_rows(world: Any) -> list[Row]:
    """Every JSON / safetensors file a command reads, under each fault: one line naming it."""
    from helpers_faults import copy, labels_argv, train_argv

    def teacher_case(name: str, fault: str):
        def run(tmp):
            te = copy(world.teacher, tmp / "te")
            FAULTS[fault](te / name)
            argv = labels_argv(world, tmp / "l", "--teacher", str(te))
            if name == "tokenizer.json" and fault in ("missing", "directory"):
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
            if fault == "missing":
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
            exc = FileNotFoundError if fault == "missing" else ValueError
            return raises(lambda: SteeringSpec.load(p), exc, "spec")
        return run

    rows = []
    for fault in FAULTS:
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            if name.endswith(".safetensors") and fault in ("not UTF-8", "wrong type"):
                continue
            rows.append(Row("files: teacher", f"{name} {fault}", teacher_case(name, fault)))
        for name in ("cfg.json", "sae_weights.safetensors"):
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


# ---- rows: the scenarios ----------------------------------------------------------------
def scenario_rows(world: Any) -> list[Row]:
    from helpers_faults import copy, labels_argv, other_tokenizer_shards, train_argv, truncate

    def spec_file(tmp: Path, blob: Any) -> str:
        p = tmp / "spec.json"
        p.write_text(blob if isinstance(blob, str) else json.dumps(blob))
        return str(p)

    def resume_lr(tmp):
        r = copy(world.run, tmp / "run")
        before = (r / "config.yaml").read_text()
        v = refused(train_argv(world, r, "--objective", "ntp", "--max-steps", "6", "--resume",
                               "--optim.lr", "0.5"), "--optim.lr 0.0006")
        return v if (r / "config.yaml").read_text() == before else "silently wrong: yaml"

    def resume_longer(tmp):
        import yaml

        r = copy(world.run, tmp / "run")
        v = succeeds(train_argv(world, r, "--objective", "ntp", "--max-steps", "9",
                                "--resume"))
        cfg = yaml.safe_load((r / "config.yaml").read_text())
        return v if cfg["optim"]["schedule_steps"] == 6 else "silently wrong: schedule"

    def symlinked(tmp):
        other = copy(world.run, tmp / "other")
        r = tmp / "run"
        r.mkdir()
        (r / "checkpoints").symlink_to(other / "checkpoints")
        v = refused(train_argv(world, r, "--objective", "ntp", "--max-steps", "6", "--force"),
                    "resolves to", "another --out")
        kept = sorted(p.name for p in (other / "checkpoints").glob("step_*"))
        return v if kept == ["step_00000003", "step_00000006"] else f"data loss: {kept}"

    def shard_cut(tmp):
        from cocomix_lens.data import TokenShards
        from cocomix_lens.data.files import CorruptFileError

        d = copy(world.shards, tmp / "s")
        shards = TokenShards.open(d)
        shards.batch("train", [0], 8)
        truncate(d / "train.bin", 64)
        return raises(lambda: shards.batch("train", [100], 8), CorruptFileError, "train.bin")

    def huge_spec(tmp):
        import time

        edits = [{"op": "scale", "concept": 1, "value": 2.0}] * 1_100_000
        path = spec_file(tmp, {"edits": edits})
        t0 = time.perf_counter()
        v = refused(["generate", "--run", cocomix_run(), "--prompt", "a", "--steer", path],
                    "MAX_SPEC_BYTES")
        return v if time.perf_counter() - t0 < 5 else f"slow: {v}"

    def inflated_vocab(tmp):
        from cocomix_lens import CoCoMixModel

        te = copy(world.teacher, tmp / "te")
        blob = json.loads((te / "config.json").read_text())
        blob["config"]["d_vocab"] = 1 << 20
        (te / "config.json").write_text(json.dumps(blob))
        return raises(lambda: CoCoMixModel.from_pretrained(te), ValueError, "config.json")

    def teacher_type(tmp):
        te = copy(world.teacher, tmp / "te")
        blob = json.loads((te / "config.json").read_text())
        blob["config"]["d_model"] = "wide"
        (te / "config.json").write_text(json.dumps(blob))
        return refused(labels_argv(world, tmp / "l", "--teacher", str(te)), "config.json",
                       "d_model")

    def full_disk(tmp):  # safetensors reports a full disk as its own error, errno-less
        import safetensors

        import training.checkpoint as ck

        real, usage = ck.save_file, ck.shutil.disk_usage

        def full(tensors, path):
            raise safetensors.SafetensorError("I/O error: No space left on device")
        ck.save_file = full
        ck.shutil.disk_usage = lambda p: type("Usage", (), {"free": 0})()
        try:
            return refused(train_argv(world, tmp / "r", "--objective", "ntp", "--max-steps",
                                      "3"), "No space", "safetensors")
        finally:
            ck.save_file, ck.shutil.disk_usage = real, usage

    def debris(tmp):
        import subprocess

        from training.checkpoint import CheckpointManager

        r = copy(world.run, tmp / "run")
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        ck = r / "checkpoints"
        (ck / f".index.json.tmp.{dead.pid}").write_text("{")
        (ck / ".tmp-step_00000009-abcd").mkdir()
        (ck / "step_00000001").mkdir()
        succeeds(train_argv(world, r, "--objective", "ntp", "--max-steps", "6", "--resume"))
        left = sorted(p.name for p in ck.iterdir())
        return holds(left == ["index.json", "step_00000003", "step_00000006"] and
                     CheckpointManager(ck).latest() is not None)

    def threads_recorded(tmp):
        import yaml

        r = tmp / "r"
        v = succeeds(train_argv(world, r, "--objective", "ntp", "--max-steps", "3",
                                "--threads", "1"))
        cfg = yaml.safe_load((r / "config.yaml").read_text())
        return v if cfg["system"]["threads"] == 1 else "silently wrong: not recorded"

    def nan_json(tmp):
        from cocomix_lens.data.files import strict_json

        text = strict_json({"strength": math.nan, "ci": [math.inf, 1.0]})
        try:
            json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except ValueError:
            return "silently wrong: NaN written"
        return "correct"

    def not_utf8_text(tmp):
        (tmp / "c.txt").write_bytes("caf\xe9 au lait\n\n".encode("latin-1") * 50)
        return refused(["prepare", "--corpus", "text", "--path", str(tmp / "c.txt"), "--out",
                        str(tmp / "o"), "--vocab-size", "300"], "c.txt", "UTF-8")

    made: dict[str, str] = {}

    def cocomix_run() -> str:
        """A 3-step CoCoMix train run of the world (its student has a concept head)."""
        if "run" not in made:
            out = world.root / "cocomix_run"
            if not (out / "model").is_dir():
                code, err, _ = cli(train_argv(world, out, "--objective", "cocomix", "--labels",
                                              str(world.labels), "--concept.k_attr", "2",
                                              "--max-steps", "3"))
                assert code == 0, err
            made["run"] = str(out)
        return made["run"]

    spec_run = str(world.run)
    rows = [
        ("1 numbers", "prepare --max-docs -5", lambda t: refused(
            ["prepare", "--out", str(t / "o"), "--max-docs", "-5"], "--max-docs")),
        ("1 numbers", "prepare --max-docs 0", lambda t: refused(
            ["prepare", "--out", str(t / "o"), "--max-docs", "0"], "--max-docs")),
        ("1 numbers", "concepts --top -5", lambda t: refused(
            ["concepts", "--run", spec_run, "--top", "-5"], "--top")),
        ("1 numbers", "inspect --max-tokens -1", lambda t: refused(
            ["inspect", "--run", spec_run, "--text", "a", "--max-tokens", "-1"],
            "--max-tokens")),
        ("1 numbers", "steer-eval --samples 0", lambda t: refused(
            ["steer-eval", "--run", spec_run, "--densest", "3", "--samples", "0"],
            "--samples")),
        ("1 numbers", "train --optim.lr nan", lambda t: refused(
            train_argv(world, t / "r", "--optim.lr", "nan"), "--optim.lr")),
        ("2 tokenizer", "on-the-fly labels from another tokenizer's teacher", lambda t: refused(
            ["train", "--data", str(other_tokenizer_shards(world, t)), "--out", str(t / "r"),
             "--objective", "cocomix", "--teacher", str(world.teacher), "--sae",
             str(world.sae), "--model.n_concepts", "48"] + train_argv(world, t)[5:],
            "tokenizer")),
        ("3 SIGBUS", "shard cut while training reads it", shard_cut),
        ("4 resume", "--resume with --optim.lr 0.5 (config.yaml untouched)", resume_lr),
        ("4 resume", "--resume --max-steps below the steps done", lambda t: refused(
            train_argv(world, copy(world.run, t / "run"), "--objective", "ntp", "--max-steps",
                       "2", "--resume"), "--max-steps 6")),
        ("4 resume", "--resume --max-steps larger: schedule horizon kept", resume_longer),
        ("5 specs", "concept id 9999", lambda t: refused(
            ["generate", "--run", cocomix_run(), "--prompt", "a", "--steer", spec_file(
                t, {"edits": [{"op": "scale", "concept": 9999, "value": 2}]})],
            "out of range")),
        ("5 specs", "int positions", lambda t: refused(
            ["generate", "--run", cocomix_run(), "--prompt", "a", "--steer", spec_file(
                t, {"edits": [{"op": "scale", "concept": 1, "value": 2, "positions": 3}]})],
            "positions=3")),
        ("5 specs", "string value", lambda t: refused(
            ["generate", "--run", cocomix_run(), "--prompt", "a", "--steer", spec_file(
                t, {"edits": [{"op": "scale", "concept": 1, "value": "x"}]})], "value")),
        ("5 specs", "steer-eval on a raw-vector spec", lambda t: refused(
            ["steer-eval", "--run", cocomix_run(), "--spec", spec_file(
                t, {"edits": [{"op": "vector", "value": 1, "vector": [0.0] * 32}]})],
            "names no concept")),
        ("5 specs", "generate --model teacher --steer", lambda t: refused(
            ["generate", "--run", spec_run, "--prompt", "a", "--model", "teacher", "--steer",
             spec_file(t, {"edits": [{"op": "scale", "concept": 1, "value": 2}]})],
            "--steer")),
        ("6 silent", "--topic on a run that is not a world run", lambda t: refused(
            ["steer-eval", "--run", cocomix_run(), "--spec", spec_file(
                t, {"edits": [{"op": "scale", "concept": 1, "value": 2}]}), "--topic",
             "bogus"], "--topic")),
        ("6 silent", "world target: unknown topic", lambda t: raises(
            lambda: _world_target({"topic": "bogus"}), ValueError, "bogus")),
        ("6 silent", "world target: unknown character", lambda t: raises(
            lambda: _world_target({"character": "Nobody"}), ValueError, "Nobody")),
        ("6 silent", "strict JSON: NaN and inf written as null", nan_json),
        ("7 files", "teacher config.json with a string for an int", teacher_type),
        ("7 files", "missing teacher directory (one short line)", lambda t: _short(
            labels_argv(world, t / "l", "--teacher", str(t / "no" / "teacher")),
            "does not exist")),
        ("7 files", "--device cuda without CUDA (gpu9 where CUDA exists)", lambda t: refused(
            ["generate", "--run", spec_run, "--prompt", "a", "--device",
             "gpu9" if _has_cuda() else "cuda"], "--device")),
        ("7 files", "full disk while saving a checkpoint", full_disk),
        ("7 files", "non-UTF-8 text corpus file", not_utf8_text),
        ("8 debris", "index temporaries, .tmp dirs, unlisted old step_* removed", debris),
        ("9 symlinks", "checkpoints/ -> another run's: --force refused, nothing deleted",
         symlinked),
        ("10 resources", "a spec of 1.1M edits refused in < 5 s", huge_spec),
        ("10 resources", "teacher config with an inflated vocabulary", inflated_vocab),
        ("10 resources", "app --port 99999", lambda t: refused(
            ["app", "--run", spec_run, "--port", "99999"], "--port")),
        ("10 resources", "app --host 0.0.0.0 warns", lambda t: holds(
            "no login" in (_host_warning("0.0.0.0") or "") and
            _host_warning("127.0.0.1") is None)),
        ("10 resources", "prompt + new tokens past the scoring teacher's context",
         lambda t: raises(lambda: _scoring_context(), ValueError, "context")),
        ("12 threads", "--threads recorded in config.yaml", threads_recorded),
    ]
    return [Row(area, case, fn) for area, case, fn in rows]


def _world_target(extras: dict[str, Any]):
    from cocomix_lens.world.steering_scorers import world_target

    return world_target(None, 0, extras)


def _host_warning(host: str):
    from training.commands.app import host_warning

    return host_warning(host)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _short(argv: list[str], needle: str) -> str:
    """`refused`, and the line under 400 characters (not every model name listed)."""
    verdict = refused(argv, needle)
    return verdict if len(cli(argv)[1]) < 400 else "vague error: a very long line"


def _scoring_context():
    from types import SimpleNamespace

    from tokenizers import Tokenizer, models, pre_tokenizers

    from app.steer_logic import encode_for_scoring

    tok = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(["<|endoftext|>"])
    student = SimpleNamespace(cfg=SimpleNamespace(n_ctx=512), tokenizer=tok)
    run = SimpleNamespace(teacher=SimpleNamespace(cfg=SimpleNamespace(n_ctx=32)))
    return encode_for_scoring(run, student, "a a", 64)


# ---- rows: the app ------------------------------------------------------------------------------


def app_rows(root: Path) -> list[Row]:
    """Each malformed spec uploaded on the Steer page, and damaged summaries on the Training
    page, through streamlit's AppTest on an app root (helpers_app.build_root): one warning or
    error line, never Streamlit's exception box."""
    from helpers_app import APP_SPECS, app_env, open_app

    def upload(blob: bytes, message: str):
        def run(tmp):
            with app_env(root):
                at = open_app(page="steer")
                at.file_uploader(key="steer_upload").set_value(("bad.json", blob,
                                                                 "application/json"))
                at.run()
            if at.exception:
                return "traceback: the exception box"
            notes = [w.value for w in at.warning]
            return "clear error" if len(notes) == 1 and message in notes[0] else \
                f"vague error: {notes}"
        return run

    def summary(blob: bytes):
        def run(tmp):
            broken = root / f"broken{len(blob)}"
            shutil.copytree(root / "run", broken,
                            ignore=shutil.ignore_patterns("*.safetensors"))
            (broken / "summary.json").write_bytes(blob)
            try:
                with app_env(root):
                    at = open_app(page="training", run=broken.name)
            finally:
                shutil.rmtree(broken)
            if at.exception:
                return "traceback: the exception box"
            errs = [e.value for e in at.error]
            ok = len(errs) == 1 and "summary.json" in errs[0] and "fix:" in errs[0]
            return "clear error" if ok else f"vague error: {errs}"
        return run

    rows = [Row("app: Steer upload", name, upload(blob, msg)) for name, blob, msg in APP_SPECS]
    rows += [Row("app: Training page", f"summary.json {name}", summary(blob))
             for name, blob in (("truncated", b"{garbage"), ("empty", b""),
                                ("an array", b"[1, 2]"), ("not UTF-8", b"\xff\xfe"))]
    return rows


# ---- the table ----------------------------------------------------------------------------------
class _Factory:
    def __init__(self, root: Path):
        self.root, self.n = root, 0

    def mktemp(self, name: str) -> Path:
        self.n += 1
        path = self.root / f"{name}{self.n}"
        path.mkdir(parents=True)
        return path


def all_rows(world: Any) -> list[Row]:
    return bound_rows() + file_rows(world) + scenario_rows(world)


def run_rows(rows: list[Row], tmp: Path) -> list[Row]:
    for i, row in enumerate(rows):
        where = tmp / f"row{i}"
        where.mkdir(parents=True, exist_ok=True)
        try:
            row.verdict = row.run(where)
        except Exception as err:  # noqa: BLE001 — a row that blows up is a finding
            row.verdict = f"traceback: {type(err).__name__}: {str(err)[:120]}"
            row.note = traceback.format_exc(limit=2)[-300:]
        shutil.rmtree(where, ignore_errors=True)
    return rows


def kind(verdict: str) -> str:
    return verdict.split(":")[0]


def markdown(rows: list[Row], extra: str = "") -> str:
    counts = Counter(kind(r.verdict) for r in rows)
    lines = ["# Reliability matrix", "",
             "Generated by `python tests/faults/reliability_matrix.py --write "
             "docs/reliability_matrix.md` (`make faults`); `make test` runs the same rows "
             "(tests/faults/test_reliability_matrix.py) and fails on any verdict other than "
             "`correct` or `clear error`.", "",
             "Numbers rows probe each flag or setting with -1, 0, 1e30, NaN and inf; file rows "
             "damage one file of a small world (missing, empty, truncated, not UTF-8, another "
             "JSON type, a directory in its place) and run the command that reads it.", "",
             "**Counts by verdict**: " + ", ".join(f"{k} {v}" for k, v in counts.most_common())
             + f" (of {len(rows)} rows)", ""]
    if extra:
        lines += [extra, ""]
    lines += ["| area | case | verdict |", "|---|---|---|"]
    lines += [f"| {r.area} | {r.case.replace('|', '/')} | {r.verdict.replace('|', '/')} |"
              for r in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    import tempfile

    from helpers_faults import build_world

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", help="write the markdown table here")
    ap.add_argument("--kill-log", help="append the kill-loop figure from this log")
    ap.add_argument("--no-app", action="store_true", help="skip the app rows (a micro run)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="matrix_") as tmp:
        world = build_world(_Factory(Path(tmp)))
        rows = all_rows(world)
        if not args.no_app:
            from helpers_app import build_root

            (Path(tmp) / "app").mkdir()
            rows += app_rows(build_root(Path(tmp) / "app"))
        rows = run_rows(rows, Path(tmp) / "rows")
    extra = ""
    if args.kill_log and Path(args.kill_log).is_file():
        last = Path(args.kill_log).read_text().strip().splitlines()[-1]
        extra = (f"**Kill loops** (`OMP_NUM_THREADS=1 python tests/faults/kill_loops.py --loops 10 "
                 f"--kills 10`, CoCoMix objective): {last}")
    text = markdown(rows, extra)
    if args.write:
        Path(args.write).write_text(text)
    counts = Counter(kind(r.verdict) for r in rows)
    print(", ".join(f"{k} {v}" for k, v in counts.most_common()), f"of {len(rows)} rows")
    for r in rows:
        if kind(r.verdict) not in GOOD:
            print(f"  {r.area} | {r.case} | {r.verdict}")
    return 0 if all(kind(r.verdict) in GOOD for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
