"""The reliability matrix's rows for the reliability issues' scenarios (issue 25's items by
number), each run end to end."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from matrix_verdicts import Row, cli, holds, raises, refused, succeeds


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
        # Refused by its size before it is parsed: the file ends in a JSON error that a parse
        # would report first (a clock here would fail on a slow machine, not on a slow check).
        edits = [{"op": "scale", "concept": 1, "value": 2.0}] * 1_100_000
        path = spec_file(tmp, json.dumps({"edits": edits}) + " ]")
        return refused(["generate", "--run", cocomix_run(), "--prompt", "a", "--steer", path],
                       "MAX_SPEC_BYTES")

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
        ("10 resources", "a spec of 1.1M edits refused by its size, before parsing", huge_spec),
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
