"""Atomic writes and hashes (cocomix_lens.data.files)."""

import hashlib
import json

import pytest

from cocomix_lens.data.files import (
    atomic_open,
    atomic_write_json,
    atomic_write_text,
    sha256_file,
    sha256_json,
)


def test_failed_atomic_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as f:
            f.write("new, half written")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_sha256_file_matches_hashlib(tmp_path):
    blob = bytes(range(256)) * 5000  # > 1 MiB chunk boundary
    (tmp_path / "b").write_bytes(blob)
    assert sha256_file(tmp_path / "b") == hashlib.sha256(blob).hexdigest()


def test_sha256_json_ignores_key_order(tmp_path):
    assert sha256_json({"a": 1, "b": [1, 2]}) == sha256_json({"b": [1, 2], "a": 1})
    assert sha256_json({"a": 1}) != sha256_json({"a": 2})
    atomic_write_json(tmp_path / "m.json", {"z": 1, "a": 2})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 2, "z": 1}


READ_CASES = {  # name -> (bytes or None for a directory, needle)
    "truncated": (b'{"a": 1, "b"', "is not valid JSON (line 1 column"),
    "empty": (b"", "is empty"),
    "blank": (b"  \n", "is empty"),
    "latin1": ('{"a": "caf\xe9"}'.encode("latin-1"), "is not UTF-8 text"),
    "list": (b"[1, 2]", "holds an array, an object was expected"),
    "string-field": (b'{"a": "x"}', "'a' is 'x', an integer was expected"),
    "bool-field": (b'{"a": true}', "'a' is True, an integer was expected"),
    "no-field": (b'{"b": 1}', "has no 'a' field"),
    "directory": (None, "is a directory"),
}


@pytest.mark.parametrize("name", READ_CASES)
def test_read_json_names_the_file_the_fault_and_the_fix_in_one_line(tmp_path, name):
    from cocomix_lens.data.files import CorruptFileError, read_json

    blob, needle = READ_CASES[name]
    path = tmp_path / f"{name}.json"
    path.mkdir() if blob is None else path.write_bytes(blob)
    with pytest.raises(CorruptFileError) as err:
        read_json(path, "re-create it", expect=dict, fields={"a": int})
    text = str(err.value)
    assert str(path) in text and needle in text and text.endswith("fix: re-create it")
    assert "\n" not in text


def test_read_json_missing_is_file_not_found_naming_file_and_fix(tmp_path):
    from cocomix_lens.data.files import read_json

    with pytest.raises(FileNotFoundError, match=r"nope.json does not exist; fix: make it"):
        read_json(tmp_path / "nope.json", "make it")
    (tmp_path / "ok.json").write_text('{"a": 2, "f": 1.5}')
    assert read_json(tmp_path / "ok.json", "x", dict, {"a": int, "f": float}) == {"a": 2,
                                                                                  "f": 1.5}


def test_safetensors_header_refuses_cut_padded_and_foreign_files_naming_them(tmp_path):
    import torch
    from safetensors.torch import save_file

    from cocomix_lens.data.files import CorruptFileError, safetensors_header

    path = tmp_path / "w.safetensors"
    save_file({"W": torch.zeros(4, 3)}, str(path))
    assert safetensors_header(path, "x")["W"]["shape"] == [4, 3]
    whole = path.read_bytes()
    for name, blob, needle in [("cut", whole[:-5], "cut short or padded"),
                               ("pad", whole + b"\0", "cut short or padded"),
                               ("head", whole[:20], "not a safetensors file"),
                               ("text", b"hello world, not tensors", "not a safetensors")]:
        bad = tmp_path / f"{name}.safetensors"
        bad.write_bytes(blob)
        with pytest.raises(CorruptFileError, match=f"{name}.safetensors.*{needle}.*fix: redo"):
            safetensors_header(bad, "redo")


def test_the_next_write_removes_dead_writers_temporaries_and_keeps_live_ones(tmp_path):
    import os
    import subprocess
    import sys

    from cocomix_lens.data.files import remove_temporaries

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".f.json.tmp.{dead.pid}"
    live = tmp_path / f".g.json.tmp.{os.getppid()}"  # a running process: maybe mid-write
    stale.write_text("{half"), live.write_text("{half")
    atomic_write_json(tmp_path / "f.json", {"a": 1})
    assert not stale.exists() and live.exists()
    stale.write_text("{half")
    assert remove_temporaries(tmp_path) == 1 and live.exists() and not stale.exists()


def test_strict_json_writes_no_nan_or_infinity(tmp_path):
    import math

    import numpy as np

    from cocomix_lens.data.files import strict_json

    blob = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": np.float32("nan"),
            "d": np.int64(3)}
    assert json.loads(strict_json(blob)) == {"a": None, "b": [None, None, 1.5], "c": None,
                                             "d": 3}
    atomic_write_json(tmp_path / "x.json", blob)
    assert "NaN" not in (tmp_path / "x.json").read_text()


def test_a_write_that_fails_names_the_target_and_keeps_the_errno(tmp_path, monkeypatch):
    import errno
    import os

    real = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as err:
        atomic_write_text(tmp_path / "out.json", "x")
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(tmp_path / "out.json")
    monkeypatch.setattr(os, "fsync", real)
    assert list(tmp_path.iterdir()) == []  # no temporary left
    from training.cli import describe_error

    line = describe_error(err.value, type("Args", (), {"command": "prepare"})())
    assert line.startswith(f"{tmp_path / 'out.json'}: no space left") and "fix:" in line
