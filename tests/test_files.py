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
