"""`prepare_shards`: corpus -> tokenizer -> token shards, idempotent per inputs.

The inputs (corpus fingerprint, tokenizer choice, split settings) are hashed into the
manifest; re-running with the same inputs returns the existing manifest without work, and
different inputs into a used directory need `force=True`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

import cocomix_lens
from cocomix_lens.data.documents import Document
from cocomix_lens.data.files import (
    atomic_write_json,
    is_temporary,
    remove_temporaries,
    sha256_file,
    sha256_json,
)
from cocomix_lens.data.lock import LOCK_FILE, DirLock
from cocomix_lens.data.shards import (
    FORMAT_VERSION,
    MANIFEST,
    TOKENIZER_FILE,
    ShardWriter,
    TokenShards,
    read_manifest,
    shard_dtype,
)
from cocomix_lens.data.tokenizer import (
    DEFAULT_VOCAB_SIZE,
    build_tokenizer,
    eos_id,
    save_tokenizer,
    tokenizer_sha256,
)
from cocomix_lens.data.truth import SPANS_KEY, TRUTH_FILE, TruthWriter
from cocomix_lens.progress import Progress, no_progress
from training.corpus.sources import CorpusSource, split_of

log = logging.getLogger(__name__)
_ENCODE_BATCH = 512


@dataclass(frozen=True)
class PrepareResult:
    manifest: dict[str, Any]
    skipped: bool  # True when the directory already held shards of the same inputs


def _inputs(corpus: CorpusSource, tokenizer: str, vocab_size: int, tokenizer_file: str | None,
            val_fraction: float, seed: int) -> dict[str, Any]:
    tok: dict[str, Any] = {"kind": tokenizer}
    if tokenizer == "bpe":
        tok["vocab_size"] = vocab_size
    if tokenizer_file:
        tok["file_sha256"] = sha256_file(tokenizer_file)
    return {"format_version": FORMAT_VERSION, "corpus": corpus.fingerprint(), "tokenizer": tok,
            "val_fraction": val_fraction, "split_seed": seed}


# What `prepare` itself writes: a directory holding only these (no manifest) is a prepare
# killed before its manifest, which a re-run may overwrite without --force.
OWN_FILES = ("train.bin", "val.bin", "docs_train.jsonl", "docs_val.jsonl", TOKENIZER_FILE)


def _claim(out: Path, inputs_sha: str, force: bool) -> dict[str, Any] | None:
    """The existing manifest if `out` already holds these inputs intact (every shard's sha256
    checked); else make sure we may overwrite `out` (empty, an interrupted prepare, or force)
    and drop its manifest before writing. Call with `out` locked."""
    removed = remove_temporaries(out)
    if removed:
        log.info("removed %d temporary files an interrupted prepare left in %s", removed, out)
    if (out / MANIFEST).is_file():
        manifest = read_manifest(out)
        if manifest.get("inputs_sha256") == inputs_sha and not force:
            try:
                TokenShards.open(out, verify=True)  # sizes, tokenizer and sha256 intact?
                return manifest
            except ValueError as err:
                log.warning("%s; rebuilding the shards from the same inputs", err)
        elif not force:
            raise FileExistsError(f"{out} already holds shards prepared from different inputs "
                                  f"({manifest.get('corpus', {}).get('source')}); fix: pass "
                                  "--force to overwrite or choose another --out")
    elif _foreign(out) and not force:
        raise FileExistsError(f"{out} is not empty and holds no {MANIFEST}; fix: pass --force "
                              "to write into it anyway or choose another --out")
    # The manifest goes first so a crash mid-write never leaves it describing new shards.
    (out / MANIFEST).unlink(missing_ok=True)
    return None


def _foreign(out: Path) -> list[str]:
    """Names in `out` that neither prepare nor its lock wrote."""
    if not out.is_dir():
        return []
    return [p.name for p in out.iterdir()
            if p.name not in OWN_FILES and p.name != LOCK_FILE and not is_temporary(p.name)]


def _train_texts(corpus: CorpusSource, val_fraction: float, seed: int,
                 progress: Progress) -> Callable[[], Iterator[str]]:
    def texts() -> Iterator[str]:
        # The bar's total is known when the tokenizer sees every document (the default).
        own = type(corpus).tokenizer_documents is CorpusSource.tokenizer_documents
        docs = progress(corpus.tokenizer_documents(), corpus.num_documents() if own else None,
                        "train tokenizer")
        return (d.text for d in docs if split_of(d.id, val_fraction, seed) == "train")
    return texts


def _batches(docs: Iterable[Document], n: int) -> Iterator[list[Document]]:
    it = iter(docs)
    while batch := list(islice(it, n)):
        yield batch


def _write(corpus: CorpusSource, tok: Tokenizer, out: Path, val_fraction: float, seed: int,
           progress: Progress) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    """Shards, and the per-token ground truth of documents carrying `meta["spans"]`."""
    truth = TruthWriter(out)
    with ShardWriter(out, tok.get_vocab_size(), eos_id(tok)) as writer:
        docs = progress(corpus.documents(), corpus.num_documents(), "tokenize")
        for batch in _batches(docs, _ENCODE_BATCH):
            encs = tok.encode_batch([d.text for d in batch], add_special_tokens=False)
            for doc, enc in zip(batch, encs):
                split = split_of(doc.id, val_fraction, seed)
                if SPANS_KEY in doc.meta:  # ground truth goes to truth_<split>.npy, not docs
                    truth.add(split, writer.splits[split].tokens, enc.offsets,
                              doc.meta[SPANS_KEY])
                    doc = Document(doc.id, doc.text,
                                   {k: v for k, v in doc.meta.items() if k != SPANS_KEY})
                writer.add(split, doc, enc.ids)
        summary = writer.summary()
        for split, info in summary.items():
            if info["documents"] == 0 and (split == "train" or val_fraction > 0):
                n_docs = sum(i["documents"] for i in summary.values())
                raise ValueError(
                    f"no document fell into the {split} split ({n_docs} document"
                    f"{'' if n_docs == 1 else 's'} in all); fix: split your text into more "
                    "documents (a .txt file is one document unless --separator splits it, "
                    "e.g. --separator '\\n\\n' for paragraphs), use a larger corpus, or "
                    "change the validation fraction")
    return summary, truth.finish({split: info["tokens"] for split, info in summary.items()})


def prepare_shards(corpus: CorpusSource, out: str | Path, tokenizer: str = "bpe",
                   vocab_size: int = DEFAULT_VOCAB_SIZE, tokenizer_file: str | None = None,
                   val_fraction: float = 0.02, seed: int = 0, force: bool = False,
                   progress: Progress | None = None) -> PrepareResult:
    """Tokenize `corpus` into shard directory `out` (see `cocomix_lens.data.shards`).

    The split is by document (hash of id and `seed`); a trained BPE sees train documents
    only."""
    progress = progress or no_progress
    out = Path(out)
    split_of("", val_fraction, seed)  # validates val_fraction before any work
    inputs = _inputs(corpus, tokenizer, vocab_size, tokenizer_file, val_fraction, seed)
    with DirLock(out, "shard directory"):
        return _prepare_locked(corpus, out, inputs, tokenizer, vocab_size, tokenizer_file,
                               val_fraction, seed, force, progress)


def _prepare_locked(corpus: CorpusSource, out: Path, inputs: dict[str, Any], tokenizer: str,
                    vocab_size: int, tokenizer_file: str | None, val_fraction: float,
                    seed: int, force: bool, progress: Progress) -> PrepareResult:
    inputs_sha = sha256_json(inputs)
    existing = _claim(out, inputs_sha, force)
    if existing is not None:
        log.info("%s already holds these shards (inputs %s); nothing to do", out,
                 inputs_sha[:12])
        return PrepareResult(existing, skipped=True)
    texts = _train_texts(corpus, val_fraction, seed, progress)
    tok = build_tokenizer(tokenizer, texts, vocab_size, tokenizer_file)
    summary, truth = _write(corpus, tok, out, val_fraction, seed, progress)
    save_tokenizer(tok, out / TOKENIZER_FILE)
    vocab = tok.get_vocab_size()
    manifest = {"format_version": FORMAT_VERSION, "vocab_size": vocab,
                "dtype": shard_dtype(vocab).name, "eos_id": eos_id(tok),
                "tokenizer_sha256": tokenizer_sha256(tok), "tokenizer_file": TOKENIZER_FILE,
                "splits": summary, "corpus": inputs["corpus"], "inputs": inputs,
                "inputs_sha256": inputs_sha, "truth_file": TRUTH_FILE if truth else None,
                "created_by": f"cocomix-lens {cocomix_lens.__version__}"}
    atomic_write_json(out / MANIFEST, manifest)
    log.info("wrote %s: %d train / %d val tokens", out, summary["train"]["tokens"],
             summary["val"]["tokens"])
    return PrepareResult(manifest, skipped=False)
