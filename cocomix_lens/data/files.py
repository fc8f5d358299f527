"""Crash-safe file writes and content hashes used by the data pipeline.

Every file we publish goes through a temporary sibling, is fsync'ed and then moved into
place with `os.replace`, so a reader never sees half a shard or half a manifest. The next
write of the same file removes the temporaries killed writers left (their PID is gone), so a
SIGKILL leaves nothing the next run does not clean. `read_json` / `safetensors_header` are the
readers (and `read_yaml`): every fault is one line naming the file and the fix.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from cocomix_lens.remedy import Remedy, remedied

TOKENIZER_FILE = "tokenizer.json"
"""The tokenizer's file name in a shard directory and in a saved model directory."""

_CHUNK = 1 << 20
TMP_MARK = ".tmp."  # atomic_open writes `.<name>.tmp.<pid>` beside its target


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of `path`; on clean exit fsync it and rename it onto `path`.

    On error the temporary file is removed and `path` is left untouched.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    encoding = None if "b" in mode else "utf-8"
    _remove_dead(path.parent.glob(f".{glob.escape(path.name)}{TMP_MARK}*"))  # killed writers'
    try:
        with open(tmp, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:  # name the file being written (a full disk, a read-only target),
        # not its temporary; the errno says which (callers map it to words and a fix)
        raise OSError(err.errno, err.strerror or str(err), str(path)) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def is_temporary(name: str) -> bool:
    """True for a temporary file `atomic_open` writes (left behind only by a killed writer)."""
    head, mark, pid = name.rpartition(TMP_MARK)
    return name.startswith(".") and bool(mark) and pid.isdigit()


def remove_temporaries(directory: str | Path) -> int:
    """Delete the temporaries killed writers left in `directory`; returns how many. A
    temporary whose writer (the PID in its name) still runs is kept."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    return _remove_dead(p for p in directory.iterdir() if is_temporary(p.name))


def _remove_dead(paths: Iterable[Path]) -> int:
    """Unlink the atomic_open temporaries among `paths` whose writing process is gone."""
    removed = 0
    for p in paths:
        pid = int(p.name.rpartition(TMP_MARK)[2]) if is_temporary(p.name) else None
        if pid is None or not p.is_file() or pid == os.getpid() or _alive(pid):
            continue
        p.unlink(missing_ok=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def fsync_path(path: str | Path) -> None:
    """Flush a file or a directory (after a rename into it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` (utf-8) to `path` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write `obj` as indented, key-sorted strict JSON (`strict_json`) atomically."""
    atomic_write_text(path, strict_json(obj, indent=2, sort_keys=True) + "\n")


def strict_json(obj: Any, **kwargs: Any) -> str:
    """`json.dumps` that strict parsers accept: NaN and ±inf (also numpy floats) become null,
    numpy scalars plain numbers. kwargs go to json.dumps."""
    return json.dumps(_finite(obj), allow_nan=False, **kwargs)


def _finite(obj: Any) -> Any:
    if isinstance(obj, dict):  # keys as JSON writes them, so sort_keys sorts mixed ones
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # numpy / torch scalar
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex sha256 of the canonical (key-sorted, compact) JSON form of `obj`."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CorruptFileError(ValueError):
    """A file exists but does not parse (torn by a crash, edited by hand, or another format)."""


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "an integer",
               float: "a number", bool: "true/false", type(None): "null"}


Fields = dict[str, Any]  # {key: a type, a tuple of types, or the Fields of an object}


def read_json(path: str | Path, fix: str | Remedy, expect: type | None = None,
              fields: Fields | None = None) -> Any:
    """Parse a JSON file: the one reader of every JSON file we did not just write.

    Each failure is one line naming the file, what is wrong with it and `fix` (a Remedy is
    attached to the error too: `cocomix_lens.remedy`): missing (FileNotFoundError), a
    directory, empty, not UTF-8, not JSON (line and column), not of type `expect` (e.g. dict),
    or a key of `fields` absent or of another type (CorruptFileError, a ValueError). A key
    ending in "?" may be absent; a dict value checks the fields of a nested object
    (`{"model_config?": {"d_model": int}}`)."""
    with remedied(fix):
        return _read_json(Path(path), fix, expect, fields)


def _read_json(path: Path, fix: str | Remedy, expect: type | None, fields: Fields | None) -> Any:
    text = _read_text(path, fix, "a JSON file")
    try:
        blob = json.loads(text)
    except json.JSONDecodeError as err:
        raise CorruptFileError(f"{path} is not valid JSON (line {err.lineno} column "
                               f"{err.colno}: {err.msg}; cut short?); fix: {fix}") from None
    _check_type(blob, expect, path, fix)
    _check_fields(blob, fields or {}, path, fix, "")
    return blob


def _read_text(path: Path, fix: str | Remedy, kind: str) -> str:
    """The UTF-8 text of `path`, or one line naming it: a directory, missing, empty, not UTF-8."""
    if path.is_dir():
        raise CorruptFileError(f"{path} is a directory, {kind} was expected; fix: {fix}")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist; fix: {fix}") from None
    if not raw.strip():
        raise CorruptFileError(f"{path} is empty (a write cut short?); fix: {fix}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorruptFileError(f"{path} is not UTF-8 text (byte {err.start}); fix: {fix}") \
            from None


def _check_type(blob: Any, expect: type | None, path: Path, fix: str | Remedy) -> None:
    if expect is not None and not _json_is(blob, expect):
        raise CorruptFileError(f"{path} holds {_JSON_TYPES.get(type(blob), type(blob).__name__)}"
                               f", {_JSON_TYPES.get(expect, expect.__name__)} was expected; "
                               f"fix: {fix}")


def _check_fields(blob: dict[str, Any], fields: Fields, path: Path, fix: str,
                  where: str) -> None:
    for spec, tp in fields.items():
        key = spec.rstrip("?")
        if key not in blob:
            if spec.endswith("?"):
                continue
            raise CorruptFileError(f"{path} has no {where + key!r} field; fix: {fix}")
        if isinstance(tp, dict):
            if not isinstance(blob[key], dict):
                raise CorruptFileError(f"{path}: {where + key!r} is {blob[key]!r:.60}, an "
                                       f"object was expected; fix: {fix}")
            _check_fields(blob[key], tp, path, fix, f"{where}{key}.")
        elif not _json_is(blob[key], tp):
            raise CorruptFileError(f"{path}: {where + key!r} is {blob[key]!r:.60}, "
                                   f"{_type_words(tp)} was expected; fix: {fix}")


def _json_is(value: Any, tp: type | tuple[type, ...]) -> bool:
    kinds = tp if isinstance(tp, tuple) else (tp,)
    if isinstance(value, bool):  # True is an int to Python, never a count in a file of ours
        return bool in kinds
    if float in kinds and isinstance(value, int):
        return True
    return isinstance(value, kinds)


def _type_words(tp: type | tuple[type, ...]) -> str:
    kinds = tp if isinstance(tp, tuple) else (tp,)
    return " or ".join(_JSON_TYPES.get(k, k.__name__) for k in kinds)


def read_yaml(path: str | Path, fix: str | Remedy, expect: type | None = dict) -> Any:
    """Parse a YAML file (a run config), failing as read_json does: one line naming the file,
    what is wrong with it (missing, a directory, empty, not UTF-8, not YAML with its line and
    column, not of type `expect`) and `fix`."""
    with remedied(fix):
        return _read_yaml(Path(path), fix, expect)


def _read_yaml(path: Path, fix: str | Remedy, expect: type | None) -> Any:
    import yaml

    text = _read_text(path, fix, "a YAML file")
    try:
        blob = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise CorruptFileError(f"{path} is not valid YAML ({where}{problem}; cut short?); "
                               f"fix: {fix}") from None
    _check_type(blob, expect, path, fix)
    return blob


def safetensors_header(path: str | Path, fix: str | Remedy) -> dict[str, Any]:
    """The header of a safetensors file ({tensor name: {dtype, shape, data_offsets}}), after
    checking the file is whole: CorruptFileError naming the file and `fix` when it is cut
    short, padded or not safetensors; FileNotFoundError when absent. Reads only the header, so
    shapes can be checked against a config before anything is allocated."""
    with remedied(fix):
        return _safetensors_header(Path(path), fix)


def _safetensors_header(path: Path, fix: str | Remedy) -> dict[str, Any]:
    if path.is_dir():
        raise CorruptFileError(f"{path} is a directory, a safetensors file was expected; "
                               f"fix: {fix}")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little") if size >= 8 else -1
            head = f.read(n) if 0 < n <= min(size - 8, 100 << 20) else b""
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist; fix: {fix}") from None
    try:
        header = json.loads(head.decode("utf-8")) if head else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict):
        raise CorruptFileError(f"{path} is not a safetensors file (no readable header; "
                               f"{size:,} bytes); fix: {fix}")
    ends = [v["data_offsets"][1] for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v]
    data = size - 8 - n
    if max(ends, default=0) != data:
        raise CorruptFileError(f"{path} is cut short or padded: its header describes "
                               f"{max(ends, default=0):,} bytes of tensors, the file holds "
                               f"{data:,}; fix: {fix}")
    return {k: v for k, v in header.items() if k != "__metadata__"}


def read_versioned_json(path: str | Path, version: int, *, missing: str,
                        fix: str | Remedy, fields: Fields | None = None) -> dict[str, Any]:
    """Read a JSON file carrying "format_version"; FileNotFoundError(`missing`) if absent,
    CorruptFileError if it does not parse, ValueError naming the versions and `fix` if it is
    of another format; then `fields` checked as read_json does. (A Remedy quoted in `missing`:
    wrap the call in `remedied(it)`.)"""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(missing)
    blob = read_json(path, fix, expect=dict)
    with remedied(fix):
        found = blob.get("format_version")
        if found != version:
            raise ValueError(f"{path} has unknown format_version {found!r}, this code reads "
                             f"{version}; fix: {fix}")
        _check_fields(blob, fields or {}, path, fix, "")
    return blob
