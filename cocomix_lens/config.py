"""`CoCoMixConfig`: the architecture of a CoCoMix (or plain GPT-2) model, and its presets.

Only what changes the weights lives here; training, data and steering knobs live elsewhere.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import numbers
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cocomix_lens.bounds import RANGE, bounded

# Registries of allowed names; the model maps them to implementations.
ACT_FNS = ("gelu_new", "gelu", "relu")


@dataclass(frozen=True)
class MixMode:
    """What a mix mode means for the architecture. Its implementation (the head, how the head's
    vector joins the stream and which positions feed the LM head) is in model/concept.py."""

    concepts: bool
    """A concept head (predictor + compressor) makes concept logits."""
    doubles_stream: bool
    """Blocks from insert_layer on see two positions per token."""
    official: bool
    """The official CoCoMix code has this architecture (interop maps its weights)."""
    help: str = ""


MIX_MODES: dict[str, MixMode] = {
    "interleave": MixMode(True, True, True, "paper: (h1, c1, h2, c2, ...)"),
    "add": MixMode(True, False, True, "paper's ablation: h_t + c_t"),
    "pause": MixMode(False, True, False, "baseline: a learned pause vector interleaved"),
    "none": MixMode(False, False, True, "plain GPT-2"),
}
# Fields only a model that mixes something in reads: a mix_mode "none" model ignores them.
MIXING_FIELDS = ("insert_layer", "n_concepts", "concept_top_k")


@dataclass
class CoCoMixConfig:
    """Architecture of a GPT-2-style CoCoMix model."""

    d_model: int = bounded(128, 1, 65536)
    """Residual stream width."""
    n_layers: int = bounded(4, 1, 1024)
    """Number of transformer blocks."""
    n_heads: int = bounded(4, 1, 1024)
    """Attention heads per block; must divide d_model."""
    d_mlp: int | None = bounded(None, 1, 1 << 20, integer=True)
    """MLP hidden width (default 4 * d_model)."""
    d_vocab: int = bounded(4096, 1, 1 << 20)
    """Vocabulary size."""
    n_ctx: int = bounded(256, 1, 1 << 20)
    """Maximum number of tokens (the mixed stream may hold 2 * n_ctx positions)."""
    act_fn: str = "gelu_new"
    """MLP activation: gelu_new (GPT-2's tanh GELU), gelu or relu."""
    layer_norm_eps: float = bounded(1e-5, 0, 1, lo_open=True)
    """Epsilon of every affine LayerNorm."""
    insert_layer: int = bounded(2, 0, 1024)
    """Index of the block whose input the concept head reads; later blocks see the mix."""
    n_concepts: int = bounded(2048, 1, 1 << 20)
    """Number of concepts C (the teacher SAE's d_sae)."""
    concept_top_k: int = bounded(32, 1, 1 << 20)
    """Concept logits kept (raw values) before compression."""
    mix_mode: str = "interleave"
    """interleave (paper), add (ablation), pause (baseline) or none (plain GPT-2)."""
    tie_word_embeddings: bool = True
    """Unembedding W_U is the transpose of W_E (GPT-2 and the official code)."""
    initializer_range: float = bounded(0.02, 0, 10, lo_open=True)
    """Std of the normal init of weights (GPT-2)."""

    def __post_init__(self) -> None:
        if self.d_mlp is None:
            self.d_mlp = 4 * self.d_model
        self.validate()

    # ---- validation -----------------------------------------------------------------
    def validate(self) -> None:
        """Raise a one-line ValueError naming the first invalid field and its allowed range."""
        for name, tp in _field_types().items():  # types first: the ranges compare values
            value = getattr(self, name)
            _require(_is_a(value, tp), name, value, f"{_TYPE_NAMES[tp]}")
        for f in dataclasses.fields(self):  # each field's declared Range (cocomix_lens.bounds)
            rng, value = f.metadata.get(RANGE), getattr(self, f.name)
            if rng is not None and value is not None:
                _require(rng.contains(value), f.name, value, rng.describe())
        _require(self.d_model % self.n_heads == 0, "n_heads", self.n_heads,
                 f"a divisor of d_model={self.d_model}")
        _require(self.act_fn in ACT_FNS, "act_fn", self.act_fn, f"one of {ACT_FNS}")
        _require(self.mix_mode in MIX_MODES, "mix_mode", self.mix_mode,
                 f"one of {tuple(MIX_MODES)}")
        if self.mix_mode == "none":
            return
        _require(1 <= self.insert_layer <= self.n_layers - 1, "insert_layer", self.insert_layer,
                 f"in [1, n_layers - 1 = {self.n_layers - 1}]")
        _require(1 <= self.concept_top_k <= self.n_concepts, "concept_top_k",
                 self.concept_top_k, f"in [1, n_concepts = {self.n_concepts}]")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def has_concepts(self) -> bool:
        """True when the model has a concept head (predictor + compressor)."""
        return MIX_MODES[self.mix_mode].concepts

    @property
    def doubles_stream(self) -> bool:
        """True when blocks >= insert_layer see 2T positions."""
        return MIX_MODES[self.mix_mode].doubles_stream

    # ---- serialisation --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CoCoMixConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"CoCoMixConfig: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**d)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> CoCoMixConfig:
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> CoCoMixConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    # ---- presets --------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> CoCoMixConfig:
        """A named preset (see `PRESETS`), optionally with fields overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


@functools.lru_cache(maxsize=None)
def _field_types() -> dict[str, Any]:
    """Field name -> its type (int, float, str, bool or `int | None`)."""
    return typing.get_type_hints(CoCoMixConfig)


_TYPE_NAMES = {int: "an int", float: "a number", str: "a string",
               bool: "a bool (true or false)", int | None: "an int or None"}


def _is_a(value: Any, tp: Any) -> bool:
    if tp == int | None:
        return value is None or _is_a(value, int)
    if tp is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):  # True is an int to Python, never a width or a rate here
        return False
    kind = {int: numbers.Integral, float: numbers.Real}.get(tp, tp)
    return isinstance(value, kind)


def _require(ok: bool, field: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ValueError(f"CoCoMixConfig.{field}={value!r} is invalid: must be {allowed}; fix: "
                         "correct the value")


_GPT2 = dict(d_vocab=50257, n_ctx=1024, n_concepts=32768, concept_top_k=32)
PRESETS: dict[str, dict[str, Any]] = {
    # CPU-sized student for the offline pipeline (vocab and concepts set from the run's data).
    "tiny": dict(d_model=128, n_layers=4, n_heads=4, d_vocab=4096, n_ctx=512, insert_layer=2,
                 n_concepts=2048),
    # Width-matched NTP baseline: ~ the same parameter count as "tiny" with its concept head.
    "tiny-ntp": dict(d_model=160, n_layers=4, n_heads=4, d_vocab=4096, n_ctx=512,
                     mix_mode="none"),
    # Paper sizes (Tack et al. 2025, Table 5) and their width-matched NTP baselines.
    "gpt2-69m": dict(d_model=512, n_layers=8, n_heads=8, insert_layer=3, **_GPT2),
    "gpt2-69m-ntp": dict(d_model=624, n_layers=8, n_heads=8, mix_mode="none", **_GPT2),
    "gpt2-386m": dict(d_model=1024, n_layers=24, n_heads=16, insert_layer=5, **_GPT2),
    "gpt2-386m-ntp": dict(d_model=1072, n_layers=24, n_heads=16, mix_mode="none", **_GPT2),
    "gpt2-1.38b": dict(d_model=2048, n_layers=24, n_heads=16, insert_layer=5, **_GPT2),
    "gpt2-1.38b-ntp": dict(d_model=2096, n_layers=24, n_heads=16, mix_mode="none", **_GPT2),
    # GPT-2 small itself (the paper's teacher), for from_hf_gpt2.
    "gpt2": dict(d_model=768, n_layers=12, n_heads=12, mix_mode="none", **_GPT2),
}
