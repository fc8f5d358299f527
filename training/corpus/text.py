"""The `text` corpus source: local .txt and .jsonl files, or directories of them.

A .txt file is one document, or several when `separator` is given (e.g. "\\n\\n" or
"<|endoftext|>"). A .jsonl file holds one JSON object per line; `text_field` is the text and
every other scalar field is kept as metadata.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cocomix_lens.data.documents import Document
from cocomix_lens.data.files import sha256_file
from training.corpus.sources import CorpusSource, register_source

SUFFIXES = (".txt", ".jsonl")


def unescape(separator: str) -> str:
    """A separator as typed on a command line, escapes decoded: "\\n\\n" -> two newlines
    (other characters, non-ASCII ones too, are kept)."""
    return separator.encode("latin-1", "backslashreplace").decode("unicode_escape")


def _expand(paths: Sequence[str | Path]) -> list[tuple[str, Path]]:
    """(display name, path) for every corpus file; the display name is part of document ids,
    so it is relative (file name, or dir name + relative path) to survive moving the data."""
    found: list[tuple[str, Path]] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix in SUFFIXES and f.is_file())
            found += [(f"{p.resolve().name}/{f.relative_to(p).as_posix()}", f) for f in files]
        elif p.is_file():
            if p.suffix not in SUFFIXES:
                raise ValueError(f"{p} is neither .txt nor .jsonl; fix: convert it or pass "
                                 "a directory of .txt/.jsonl files")
            found.append((p.name, p))
        else:
            raise FileNotFoundError(f"corpus path {p} does not exist; fix: pass existing "
                                    ".txt/.jsonl files or directories with --path")
    if not found:
        raise FileNotFoundError(f"no .txt or .jsonl files under {', '.join(map(str, paths))}; "
                                "fix: point --path at your text files")
    names = [name for name, _ in found]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"two corpus files share the name {dup[0]}; fix: rename one or pass "
                         "their common parent directory instead")
    return found


def _scalars(obj: dict[str, Any], skip: str) -> dict[str, Any]:
    keep = (str, int, float, bool, type(None))
    return {k: v for k, v in obj.items() if k != skip and isinstance(v, keep)}


@register_source("text")
class TextSource(CorpusSource):
    """Local files. `path`: one path or a list of files/directories."""

    def __init__(self, path: str | Path | Sequence[str | Path], separator: str | None = None,
                 text_field: str = "text", max_docs: int | None = None) -> None:
        paths = [path] if isinstance(path, (str, Path)) else list(path)
        self.files = _expand(paths)
        self.separator = separator
        self.text_field = text_field
        self.max_docs = max_docs

    def fingerprint(self) -> dict[str, Any]:
        return {"source": "text", "files": [[n, sha256_file(p)] for n, p in self.files],
                "separator": self.separator, "text_field": self.text_field,
                "max_docs": self.max_docs}

    def documents(self) -> Iterator[Document]:
        n = 0
        for name, path in self.files:
            reader = self._jsonl if path.suffix == ".jsonl" else self._txt
            try:
                for doc in reader(name, path):
                    if self.max_docs is not None and n >= self.max_docs:
                        return
                    n += 1
                    yield doc
            except UnicodeDecodeError as err:
                raise ValueError(f"{path} is not UTF-8 text (byte {err.start}); fix: convert "
                                 "it (iconv -t UTF-8) or leave it out of --path") from None

    def _txt(self, name: str, path: Path) -> Iterator[Document]:
        text = path.read_text(encoding="utf-8")
        parts = text.split(self.separator) if self.separator else [text]
        for i, part in enumerate(parts):
            if part.strip():
                yield Document(id=f"{name}:{i}", text=part, meta={"file": name, "part": i})

    def _jsonl(self, name: str, path: Path) -> Iterator[Document]:
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    text = obj[self.text_field]
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise ValueError(f"{path}:{i} is not a JSON object with a string field "
                                     f"{self.text_field!r}; fix: pass --text-field NAME or "
                                     "repair the line") from None
                if not isinstance(text, str):
                    raise ValueError(f"{path}:{i}: field {self.text_field!r} is not a string; "
                                     "fix: pass --text-field naming the text field")
                meta = {**_scalars(obj, self.text_field), "file": name, "line": i}
                yield Document(id=f"{name}:{i}", text=text, meta=meta)
