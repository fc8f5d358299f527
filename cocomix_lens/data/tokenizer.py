"""Tokenizers: a byte-level BPE trained on the corpus (default), GPT-2's (paper path) or any
HF `tokenizers` file; plus the sha256 that ties shards, label caches and models to one
tokenizer.

All tokenizers here are HF `tokenizers.Tokenizer` objects with an `<|endoftext|>` token,
which `prepare` writes between documents. Fetching GPT-2's tokenizer from the hub is the
explicit `fetch_gpt2_tokenizer()`; nothing else touches the network.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from cocomix_lens.data.files import atomic_write_text, sha256_json

EOS_TOKEN = "<|endoftext|>"
DEFAULT_VOCAB_SIZE = 4096
_MIN_VOCAB = 257  # 256 byte symbols + EOS


def prompt_ids(tokenizer: Tokenizer, text: str) -> list[int]:
    """The one prompt encoder: `text`'s ids after <|endoftext|>, as every training document
    starts, so a prompt is a document's opening. Generation from text (`model.generate`,
    `stream`), the steering evaluation, the CLI and the app all encode prompts here."""
    return [eos_id(tokenizer), *tokenizer.encode(text, add_special_tokens=False).ids]


def train_bpe(texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE,
              min_frequency: int = 2, length: int | None = None) -> Tokenizer:
    """Train a GPT-2-style byte-level BPE on `texts`; EOS is id 0. Lossless: any string
    decodes back to itself (`decode(encode(s).ids, skip_special_tokens=False) == s`)."""
    if vocab_size < _MIN_VOCAB:
        raise ValueError(f"vocab_size must be >= {_MIN_VOCAB} (256 bytes + EOS), got "
                         f"{vocab_size}; fix: pass e.g. vocab_size=4096")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=[EOS_TOKEN], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer, length=length)
    return tok


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a `tokenizer.json` and check it has the EOS token."""
    path = Path(path)
    fix = "fix: pass the tokenizer.json the prepare step or a model's save_pretrained wrote"
    if path.is_dir():
        raise ValueError(f"{path} is a directory, a tokenizer.json file was expected; {fix}")
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file {path} not found; {fix} (or GPT-2's)")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as err:  # the Rust library raises a bare Exception without the path
        raise ValueError(f"{path} is not a readable tokenizer.json ({err}); {fix}") from None
    eos_id(tok)
    return tok


def fetch_gpt2_tokenizer() -> Tokenizer:
    """GPT-2's tokenizer from the Hugging Face hub (needs network). Save it with
    `save_tokenizer` and pass the file afterwards to stay offline."""
    return Tokenizer.from_pretrained("gpt2")


def save_tokenizer(tok: Tokenizer, path: str | Path) -> None:
    """Write `tok` as tokenizer.json atomically."""
    atomic_write_text(path, tok.to_str())


def eos_id(tok: Tokenizer) -> int:
    """Id of `<|endoftext|>`; ValueError if the tokenizer lacks it."""
    i = tok.token_to_id(EOS_TOKEN)
    if i is None:
        raise ValueError(f"tokenizer has no {EOS_TOKEN} token, which separates documents; "
                         f"fix: add it with tok.add_special_tokens(['{EOS_TOKEN}'])")
    return i


def tokenizer_sha256(tok: Tokenizer) -> str:
    """Hex sha256 of the tokenizer's canonical JSON: equal iff two tokenizers map text to
    ids identically (same vocab, merges, normalisation and special tokens)."""
    return sha256_json(json.loads(tok.to_str()))


def check_tokenizer(expected_sha256: str, tok: Tokenizer | str, what: str = "model") -> None:
    """Raise ValueError unless `tok` (a Tokenizer or its sha256) is the one `what` was built
    with."""
    got = tok if isinstance(tok, str) else tokenizer_sha256(tok)
    if got != expected_sha256:
        raise ValueError(f"tokenizer mismatch: the {what} was built with tokenizer "
                         f"{expected_sha256[:12]}… but got {got[:12]}…; fix: use the "
                         f"tokenizer.json stored with the {what}, or re-prepare the data and "
                         "retrain with one tokenizer")


# kind -> builder(texts, vocab_size, file). `texts` is a zero-argument callable so kinds
# that do not train never read the corpus.
TextsFn = Callable[[], Iterable[str]]


def _bpe(texts: TextsFn, vocab_size: int, file: str | None) -> Tokenizer:
    if file:
        raise ValueError("tokenizer=bpe trains a new tokenizer and takes no file; fix: "
                         "drop tokenizer_file=PATH or use tokenizer=file")
    return train_bpe(texts(), vocab_size=vocab_size)


def _gpt2(texts: TextsFn, vocab_size: int, file: str | None) -> Tokenizer:
    if not file:
        raise ValueError("tokenizer=gpt2 needs a local GPT-2 tokenizer.json (offline); fix: "
                         "pass tokenizer_file=PATH, e.g. one saved from "
                         "cocomix_lens.data.fetch_gpt2_tokenizer()")
    tok = load_tokenizer(file)
    if tok.get_vocab_size() != 50257:
        raise ValueError(f"{file} has {tok.get_vocab_size()} tokens, GPT-2 has 50257; fix: "
                         "pass GPT-2's tokenizer.json or use tokenizer=file")
    return tok


def _file(texts: TextsFn, vocab_size: int, file: str | None) -> Tokenizer:
    if not file:
        raise ValueError("tokenizer=file needs tokenizer_file=PATH; fix: pass the tokenizer.json")
    return load_tokenizer(file)


TOKENIZERS: dict[str, Callable[[TextsFn, int, str | None], Tokenizer]] = {
    "bpe": _bpe, "gpt2": _gpt2, "file": _file}


def build_tokenizer(kind: str, texts: TextsFn, vocab_size: int = DEFAULT_VOCAB_SIZE,
                    file: str | None = None) -> Tokenizer:
    """Train or load the tokenizer of `kind` ('bpe', 'gpt2', 'file')."""
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {kind!r}; choose one of: {', '.join(TOKENIZERS)}")
    return TOKENIZERS[kind](texts, vocab_size, file)
