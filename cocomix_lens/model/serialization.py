"""HF-style checkpoints: `save_pretrained(dir)` / `from_pretrained(dir)`.

A directory holds config.json ({"format_version", "config", "metadata"}) and
model.safetensors. Nothing is ever unpickled. Each file is written to a temp name, fsynced
and renamed, so a crash leaves either the old file or the new one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from tokenizers import Tokenizer

from cocomix_lens.data.files import (
    TOKENIZER_FILE,
    atomic_open,
    atomic_write_json,
    read_versioned_json,
    safetensors_header,
)
from cocomix_lens.data.tokenizer import (
    check_tokenizer,
    load_tokenizer,
    save_tokenizer,
    tokenizer_sha256,
)

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def read_config_file(directory: Path) -> dict[str, Any]:
    """Read and check config.json of a checkpoint directory."""
    path = directory / CONFIG_FILE
    return read_versioned_json(
        path, FORMAT_VERSION,
        missing=f"{path} not found; pass a directory written by CoCoMixModel.save_pretrained",
        fix="upgrade cocomix-lens or re-save the checkpoint")


class SerializationMixin:
    """Checkpoint I/O for CoCoMixModel."""

    metadata: dict[str, Any]
    tokenizer: Tokenizer | None = None

    def save_pretrained(self, directory: str | os.PathLike,
                        metadata: dict[str, Any] | None = None,
                        tokenizer: Tokenizer | None = None) -> Path:
        """Write config.json + model.safetensors (+ tokenizer.json) into `directory`.

        The tokenizer (argument, else `self.tokenizer`) is saved beside the weights and its
        sha256 recorded in the metadata, so data tokenized differently can be refused."""
        directory = Path(directory)
        meta = {**self.metadata, **(metadata or {})}
        tokenizer = tokenizer or self.tokenizer
        if tokenizer is not None:
            meta["tokenizer_sha256"] = tokenizer_sha256(tokenizer)
            directory.mkdir(parents=True, exist_ok=True)
            save_tokenizer(tokenizer, directory / TOKENIZER_FILE)
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_open(directory / WEIGHTS_FILE, "wb") as f:
            f.write(save(tensors))
        blob = {"format_version": FORMAT_VERSION, "library": "cocomix-lens",
                "config": self.cfg.to_dict(), "metadata": meta}
        atomic_write_json(directory / CONFIG_FILE, blob)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike,
                        device: str | torch.device | None = None):
        """Load a model written by `save_pretrained`."""
        from cocomix_lens.config import CoCoMixConfig

        directory = Path(directory)
        blob = read_config_file(directory)
        config_path = directory / CONFIG_FILE
        try:
            cfg = CoCoMixConfig.from_dict(blob["config"])
        except (ValueError, TypeError) as err:  # a field of the wrong type or out of range
            raise ValueError(f"{config_path}: {err}; fix: correct the field or re-save the "
                             "model with save_pretrained") from None
        weights = directory / WEIGHTS_FILE
        if not weights.is_file():
            raise FileNotFoundError(
                f"{weights} not found; the checkpoint is incomplete: re-save it with "
                "save_pretrained"
            )
        _check_shapes(cls, cfg, safetensors_header(
            weights, "re-save the model with save_pretrained"), weights)  # before allocating
        model = cls(cfg)
        model.metadata = blob.get("metadata", {})
        try:
            state = load_file(str(weights))
        except SafetensorError as err:  # its message names no file
            raise ValueError(f"{weights} is not a readable safetensors file ({err}); fix: "
                             "re-save the model with save_pretrained") from None
        _load_checked(model, state, weights)
        model.tokenizer = _load_tokenizer(directory, model.metadata)
        return model if device is None else model.to(device)

    def check_tokenizer(self, tokenizer: Tokenizer | str) -> None:
        """Raise a clear ValueError if `tokenizer` (or its sha256) is not the model's own."""
        expected = self.metadata.get("tokenizer_sha256")
        if expected is not None:
            check_tokenizer(expected, tokenizer, what="model")


def _load_tokenizer(directory: Path, metadata: dict[str, Any]) -> Tokenizer | None:
    path = directory / TOKENIZER_FILE
    if not path.is_file():
        return None
    tok = load_tokenizer(path)
    if "tokenizer_sha256" in metadata:
        check_tokenizer(metadata["tokenizer_sha256"], tok, what=f"model in {directory}")
    return tok


def _check_shapes(cls: type, cfg: Any, header: dict[str, Any], path: Path) -> None:
    """The weights file's tensor shapes against config.json, on the meta device (nothing is
    allocated), so an inflated config is refused before it costs memory."""
    with torch.device("meta"):
        expected = {k: list(v.shape) for k, v in cls(cfg).state_dict().items()}
    for name, shape in expected.items():
        found = header.get(name, {}).get("shape")
        if found is not None and found != shape:
            raise ValueError(f"{path}: {name} has shape {tuple(found)} but "
                             f"{path.parent / CONFIG_FILE} implies {tuple(shape)}; fix: pass "
                             "a config and weights saved together by save_pretrained")


def _load_checked(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{path}: tensors do not match config.json (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); the weights and config come from different models"
        )
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise ValueError(
                f"{path}: {name} has shape {tuple(tensor.shape)} but config.json implies "
                f"{tuple(expected[name].shape)}; the weights and config come from different models"
            )
    model.load_state_dict(state)
