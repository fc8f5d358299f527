"""The `hf` corpus source: a Hugging Face dataset by name, streamed (needs network), a
dataset directory written by `Dataset.save_to_disk`, or local data files
(`name="json"|"parquet"|"csv"`, `data_files=...`).

`datasets` is imported only when this source is used, so the offline default path never
pays for it. Document ids are `<split>:<row index>`; every other scalar column is metadata.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cocomix_lens.data.documents import Document
from cocomix_lens.data.files import sha256_file
from training.corpus.sources import CorpusSource, register_source

_SCALARS = (str, int, float, bool, type(None))


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise RuntimeError("the hf corpus needs the `datasets` package; fix: pip install "
                           "datasets (or use --corpus text with local files)") from None
    return datasets


def _is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / f).is_file() for f in ("state.json",
                                                                  "dataset_dict.json"))


@register_source("hf")
class HFSource(CorpusSource):
    """`name`: hub id (e.g. roneneldan/TinyStories), a save_to_disk directory, or a builder
    name ("json", "parquet", "csv") together with `data_files`."""

    def __init__(self, name: str, config: str | None = None, split: str = "train",
                 text_field: str = "text", max_docs: int | None = None,
                 revision: str | None = None,
                 data_files: str | Sequence[str] | None = None) -> None:
        self.hf_name = name
        self.config = config
        self.split = split
        self.text_field = text_field
        self.max_docs = max_docs
        self.revision = revision
        self.data_files = [data_files] if isinstance(data_files, str) else data_files

    def _local_fingerprint(self) -> str | None:
        """Content hash for local inputs; None for a hub dataset (identified by name and
        revision: pass --revision to pin it)."""
        path = Path(self.hf_name)
        if _is_saved_dataset(path):
            # The json files carry datasets' own content fingerprint (`_fingerprint`).
            files = sorted(path.rglob("*.json"))
        elif self.data_files:
            files = [Path(f) for f in self.data_files]
        else:
            return None
        h = hashlib.sha256()
        for f in files:
            h.update(f"{f.name}:{sha256_file(f)};".encode())
        return h.hexdigest()

    def fingerprint(self) -> dict[str, Any]:
        return {"source": "hf", "name": self.hf_name, "config": self.config,
                "split": self.split, "text_field": self.text_field,
                "max_docs": self.max_docs, "revision": self.revision,
                "local_sha256": self._local_fingerprint()}

    def _dataset(self) -> Any:
        datasets = _import_datasets()
        path = Path(self.hf_name)
        if not _is_saved_dataset(path):
            return datasets.load_dataset(self.hf_name, self.config, split=self.split,
                                         streaming=True, revision=self.revision,
                                         data_files=self.data_files)
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            if self.split not in ds:
                raise ValueError(f"{path} has splits {sorted(ds)}, not {self.split!r}; "
                                 "fix: pass --split with one of them")
            ds = ds[self.split]
        return ds

    def documents(self) -> Iterator[Document]:
        for i, row in enumerate(self._dataset()):
            if self.max_docs is not None and i >= self.max_docs:
                return
            text = row.get(self.text_field)
            if not isinstance(text, str):
                raise ValueError(f"row {i} of {self.hf_name} has no string column "
                                 f"{self.text_field!r} (columns: {sorted(row)}); fix: pass "
                                 "--text-field NAME")
            meta = {k: v for k, v in row.items()
                    if k != self.text_field and isinstance(v, _SCALARS)}
            meta.update(index=i)
            yield Document(id=f"{self.split}:{i}", text=text, meta=meta)
