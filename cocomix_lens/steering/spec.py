"""`SteeringSpec`: a JSON-serialisable list of edits on a CoCoMix model's predicted concepts.

An edit names an operation (ops.py holds the registry and what each one does), a concept and
the token positions it applies to: "prompt" (positions < prompt length), "generated" (the
rest), "all", a list of absolute token indices, the first `span` slots from the prompt's last
token on ("new_tokens": steer the start of the continuation, then let the model go on by
itself), or the first `span` slots of each sentence, decided from the tokens as they are
generated: "sentences" (everywhere) or "new_sentences" (from the prompt's last token on;
sentences.py). Position t is the concept slot computed
after token t, which predicts token t + 1: an edit at the last prompt position changes the
first generated token, a "generated" edit acts from the second one on.

    spec = SteeringSpec().scale(123, 4.0).force(7, positions="generated")
    spec.save("spec.json"); SteeringSpec.load("spec.json") == spec
    validate_spec(spec, model.cfg)   # the one check of a spec against a model, before use
    with steer(model, spec): ...     # applied through hooks.py's Steering inside the block

A spec read from a file or an upload is capped (MAX_SPEC_BYTES, MAX_EDITS, MAX_POSITIONS), so
a crafted file is refused in one line before it costs memory.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cocomix_lens.data.files import atomic_write_json
from cocomix_lens.steering.hooks import Steering
from cocomix_lens.steering.ops import OPS, UNITS, describe_edit
from cocomix_lens.steering.sentences import SENTENCE_SETS

FORMAT_VERSION = 1
MAX_SPEC_BYTES = 1 << 20  # a d_model=2048 `vector` edit is ~40 KB of JSON
MAX_EDITS = 256
MAX_POSITIONS = 1 << 16
START_SET = "new_tokens"
"""The first `span` slots from the prompt's last token on: the slots that predict the first
`span` generated tokens (steer-bench's round 6: steering only the start of a continuation
moves the topic at less grammar cost than steering all of it; docs/steering.md)."""
SPAN_SETS = (START_SET, *SENTENCE_SETS)
"""Position sets whose extent is `span` slots (None means 1)."""
POSITION_SETS = ("prompt", "generated", "all", *SPAN_SETS)
Positions = str | tuple[int, ...]


def _plain_int(x: Any) -> Any:
    """A numpy integer scalar as an int; anything else as it is (checked later)."""
    return int(x) if isinstance(x, numbers.Integral) and not isinstance(x, bool) else x


@dataclass(frozen=True)
class Edit:
    """One edit. Which fields an operation uses is listed in ops.OPS[op].fields."""

    op: str
    """scale | add | force | ban | set | vector."""
    concept: int | None = None
    """Concept (SAE latent) id; `set` uses `concepts` instead."""
    value: float | None = None
    """scale: factor on the logit; add, vector: amount in logit stds (`std`, `unit`)."""
    positions: Positions = "all"
    """"prompt", "generated", "all", "new_tokens", "sentences", "new_sentences" or absolute
    token indices."""
    concepts: tuple[int, ...] | None = None
    """set: the concepts that replace the top-k."""
    weights: tuple[float, ...] | None = None
    """set: their weights (the values the compressor multiplies)."""
    vector: tuple[float, ...] | None = None
    """vector: a d_model direction to add instead of the compressor row of `concept`."""
    std: float | None = None
    """add, vector: the concept's logit std in absolute logits, the unit of `value`
    (`SteeringSpec.resolve` fills it from the run's catalogue)."""
    unit: str | None = None
    """add, vector: where the std comes from when `std` is not given: "catalogue" (None
    means it too: the run's catalogue, via `SteeringSpec.resolve`), "prompt" (measured on the
    prompt) or "logit" (raw logits, std 1). ops.UNITS."""
    span: int | None = None
    """positions "new_tokens": how many slots from the prompt's last token on the edit acts on
    (None means 1: the slot that predicts the first generated token; 4: the slots predicting
    the first four). "sentences" / "new_sentences": how many slots of each sentence (None
    means 1: the slot of the token that ends the previous sentence, which predicts the
    sentence's first token; 3: the slots predicting its first three tokens)."""

    def __post_init__(self) -> None:
        # Lists from JSON (and 1-d arrays) become tuples, so specs compare and hash by value;
        # numpy integers (a catalogue index, np.argmax) become ints, so they pass the checks
        # and save as JSON.
        for name in ("concepts", "weights", "vector", "positions"):
            value = getattr(self, name)
            if hasattr(value, "tolist") and getattr(value, "ndim", 0) == 1:  # numpy, torch
                value = value.tolist()
            if isinstance(value, (list, range)):
                object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "concept", _plain_int(self.concept))
        if isinstance(self.concepts, tuple):
            object.__setattr__(self, "concepts", tuple(map(_plain_int, self.concepts)))
        if isinstance(self.positions, tuple):
            object.__setattr__(self, "positions", tuple(map(_plain_int, self.positions)))
        check_edit(self)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


@dataclass(frozen=True)
class SteeringSpec:
    """Edits applied together, in the order of ops.ORDER (edits of one op in list order)."""

    edits: tuple[Edit, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "edits", tuple(
            e if isinstance(e, Edit) else edit_from_dict(e) for e in self.edits))

    # ---- builders: each returns a new spec with one more edit --------------------------
    def add_edit(self, edit: Edit) -> SteeringSpec:
        return replace(self, edits=(*self.edits, edit))

    # `span`: with positions "new_tokens", the slots edited from the prompt's last token on;
    # with "sentences" / "new_sentences", the slots of each sentence edited
    def scale(self, concept: int, factor: float, positions: Positions = "all",
              span: int | None = None) -> SteeringSpec:
        """Multiply concept's predicted logit by `factor` (the paper's steering)."""
        return self.add_edit(Edit("scale", concept, factor, positions, span=span))

    def add(self, concept: int, stds: float, positions: Positions = "all",
            std: float | None = None, unit: str | None = None,
            span: int | None = None) -> SteeringSpec:
        """Add `stds` standard deviations of the concept's logit to it (`std` absolute, or
        from `unit`: ops module docstring)."""
        return self.add_edit(Edit("add", concept, stds, positions, std=std, unit=unit,
                                  span=span))

    def force(self, concept: int, positions: Positions = "all",
              span: int | None = None) -> SteeringSpec:
        """Guarantee the concept is in the top-k."""
        return self.add_edit(Edit("force", concept, positions=positions, span=span))

    def ban(self, concept: int, positions: Positions = "all",
            span: int | None = None) -> SteeringSpec:
        """Guarantee the concept is not in the top-k."""
        return self.add_edit(Edit("ban", concept, positions=positions, span=span))

    def set(self, concepts: Sequence[int], weights: Sequence[float],
            positions: Positions = "all", span: int | None = None) -> SteeringSpec:
        """Replace the top-k by `concepts` with `weights`."""
        return self.add_edit(Edit("set", positions=positions, concepts=tuple(concepts),
                                  weights=tuple(weights), span=span))

    def add_vector(self, concept: int | None, alpha: float, positions: Positions = "all",
                   vector: Sequence[float] | None = None, std: float | None = None,
                   unit: str | None = None, span: int | None = None) -> SteeringSpec:
        """Add to c_t `concept`'s compressor row as if its activation rose by `alpha` stds of
        its logit (`std`, `unit` as for add), or alpha * a given d_model `vector`."""
        return self.add_edit(Edit("vector", concept, alpha, positions, std=std, unit=unit,
                                  vector=None if vector is None else tuple(map(float, vector)),
                                  span=span))

    def needs_std(self) -> list[Edit]:
        """Edits whose value is in catalogue stds that no `std` gives yet."""
        return [e for e in self.edits if "std" in OPS[e.op].fields and e.std is None
                and e.concept is not None and e.vector is None
                and (e.unit or "catalogue") == "catalogue"]

    def with_stds(self, logit_std, unit: str = "catalogue") -> SteeringSpec:
        """This spec with `std` (and `unit`) filled in for every edit of `needs_std`, from
        `logit_std` (indexable by concept id: a [n_concepts] tensor or array, a dict, or the
        catalogue's `logit_std` column), so the JSON records the stds the edits used."""
        todo = {id(e) for e in self.needs_std()}
        _check_range([e.concept for e in self.needs_std()], len(logit_std))
        return replace(self, edits=tuple(
            replace(e, std=float(logit_std[e.concept]), unit=unit) if id(e) in todo else e
            for e in self.edits))

    def resolve(self, run) -> SteeringSpec:
        """This spec with every catalogue-std edit's `std` read from the run's catalogue
        (`logit_std` over validation tokens): what the CLI, the app and the evaluation
        steer with and save. Unchanged when nothing needs a std; a one-line error when
        something does and the run has no catalogue."""
        missing = self.needs_std()
        if not missing:
            return self
        if not run.has("catalogue"):
            raise ValueError(f"{missing[0].op} on concept {missing[0].concept} is in catalogue "
                             "logit stds but the run has no catalogue; fix: build it "
                             "(catalogue.run.build_for_run(run)), or give the edit std=... or "
                             "unit='prompt' / 'logit'")
        return self.with_stds(run.catalogue.concepts["logit_std"])

    def describe(self) -> str:
        """One line per edit joined by '; ' (ops.describe_edit)."""
        return "; ".join(describe_edit(e) for e in self.edits)

    def context(self, model, prompt_len: int | None = None):
        """`steer(model, self, prompt_len)`: what `model.generate(..., steering=spec)` uses
        (any object with this method can steer a generation)."""
        return steer(model, self, prompt_len)

    # ---- JSON -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "edits": [e.to_dict() for e in self.edits]}

    @classmethod
    def from_dict(cls, blob: Mapping[str, Any]) -> SteeringSpec:
        version = blob.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ValueError(f"steering spec format_version {version!r} is not "
                             f"{FORMAT_VERSION}; fix: re-save the spec with this version")
        if not isinstance(blob.get("edits"), list):
            raise ValueError('a steering spec needs an "edits" list; fix: write '
                             '{"edits": [{"op": "scale", "concept": 12, "value": 4}]}')
        if len(blob["edits"]) > MAX_EDITS:
            raise ValueError(f"the steering spec has {len(blob['edits'])} edits, more than "
                             f"MAX_EDITS={MAX_EDITS}; fix: keep at most {MAX_EDITS} edits")
        return cls(tuple(edit_from_dict(e) for e in blob["edits"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str | bytes, name: str = "steering spec") -> SteeringSpec:
        """Parse a spec from JSON text or bytes (UTF-8); `name` (a file name) starts errors."""
        if len(text) > MAX_SPEC_BYTES:
            raise ValueError(f"{name} is {len(text):,} bytes, more than MAX_SPEC_BYTES="
                             f"{MAX_SPEC_BYTES:,}; fix: keep at most {MAX_EDITS} edits")
        try:
            blob = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
        except UnicodeDecodeError:
            raise ValueError(f"{name} is not UTF-8 text; fix: save it as UTF-8 JSON") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"{name} is not valid JSON ({err}); fix the file") from None
        if not isinstance(blob, dict):
            raise ValueError(f'{name} is not a JSON object; fix: {{"edits": [...]}}')
        try:
            return cls.from_dict(blob)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None

    def save(self, path: str | Path) -> Path:
        atomic_write_json(path, self.to_dict())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> SteeringSpec:
        path = Path(path)
        if path.is_dir():
            raise ValueError(f"steering spec {path} is a directory; fix: pass a JSON file "
                             "written by SteeringSpec.save")
        if not path.is_file():
            raise FileNotFoundError(f"steering spec {path} not found; fix: pass a JSON file "
                                    "written by SteeringSpec.save")
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise ValueError(f"steering spec {path} is {path.stat().st_size:,} bytes, more than "
                             f"MAX_SPEC_BYTES={MAX_SPEC_BYTES:,}; fix: keep at most "
                             f"{MAX_EDITS} edits")
        return cls.from_json(path.read_bytes(), name=f"steering spec {path}")


def op_edit(op: str, concept: int, strength: float, positions: Any = "all",
            span: int | None = None) -> Edit:
    """The edit of `op` on `concept` at `strength` (set: the concept alone with weight
    `strength`; force / ban: no strength)."""
    if op not in OPS:
        raise ValueError(f"unknown steering op {op!r}; fix: use one of {', '.join(OPS)}")
    if op == "set":
        return Edit("set", positions=positions, concepts=(concept,), weights=(float(strength),),
                    span=span)
    if OPS[op].range is None:
        return Edit(op, concept, positions=positions, span=span)
    return Edit(op, concept, float(strength), positions, span=span)


_FIELDS = {f.name for f in fields(Edit)}


def edit_from_dict(blob: Mapping[str, Any]) -> Edit:
    if not isinstance(blob, Mapping):
        raise ValueError(f"steering edit {blob!r} is not an object; fix: write "
                         '{"op": "scale", "concept": 12, "value": 4}')
    unknown = sorted(set(blob) - _FIELDS)
    if unknown:
        raise ValueError(f"steering edit has unknown field(s) {unknown}; fix: use only "
                         f"{sorted(_FIELDS)}")
    if "op" not in blob:
        raise ValueError(f'steering edit {dict(blob)} has no "op"; fix: add "op": "scale" '
                         "(or add, force, ban, set, vector)")
    return Edit(**blob)


def check_edit(edit: Edit) -> None:
    """Model-free checks: the op exists, its fields are present, finite and well formed."""
    if edit.op not in OPS:
        raise ValueError(f"unknown steering op {edit.op!r}; fix: use one of {', '.join(OPS)}")
    spec = OPS[edit.op]
    for name in spec.required:
        if getattr(edit, name) is None:
            raise ValueError(f"steering op {edit.op!r} needs {name!r}; fix: {spec.example}")
    extra = [f.name for f in fields(Edit) if f.name not in ("op", "positions", "span")
             and f.name not in spec.fields and getattr(edit, f.name) is not None]
    if extra:
        raise ValueError(f"steering op {edit.op!r} takes no {extra}; fix: {spec.example}")
    _check_ids(edit)
    for name in ("value", "std", "weights", "vector"):
        values = getattr(edit, name)
        values = values if isinstance(values, tuple) else (values,)
        if any(v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))
               for v in values):
            raise ValueError(f"steering op {edit.op!r}: {name} must be a number or a list of "
                             f"numbers, got {getattr(edit, name)!r}; fix: {spec.example}")
        if any(v is not None and not math.isfinite(v) for v in values):
            raise ValueError(f"steering op {edit.op!r} has a non-finite {name} ({values}); "
                             "fix: pass finite numbers")
    if edit.std is not None and edit.std <= 0:
        raise ValueError(f"std={edit.std} must be > 0; fix: pass the concept's logit std")
    if edit.unit is not None and edit.unit not in UNITS:
        raise ValueError(f"unit={edit.unit!r}; fix: use one of {UNITS}")
    check_positions(edit.positions)
    _check_span(edit)


def _check_span(edit: Edit) -> None:
    if edit.span is None:
        return
    if edit.positions not in SPAN_SETS:
        raise ValueError(f"span={edit.span!r} counts slots and needs positions "
                         f"{' or '.join(map(repr, SPAN_SETS))}, not {edit.positions!r}; fix: "
                         "drop span or use one of those positions")
    if not isinstance(edit.span, int) or isinstance(edit.span, bool) or edit.span < 1:
        raise ValueError(f"span={edit.span!r} must be an integer >= 1 (slots); "
                         'fix: e.g. "span": 2')


def _check_ids(edit: Edit) -> None:
    for name in ("concepts", "weights", "vector"):
        if getattr(edit, name) is not None and not isinstance(getattr(edit, name), tuple):
            raise ValueError(f"{name}={getattr(edit, name)!r} must be a list; fix: e.g. "
                             f'"{name}": [3, 9]')
    ids = ([edit.concept] if edit.concept is not None else []) + list(edit.concepts or ())
    if any(not isinstance(c, int) or isinstance(c, bool) or c < 0 for c in ids):
        raise ValueError(f"concept ids must be integers >= 0, got {ids}; fix: pass SAE latent "
                         "ids as listed by the catalogue")
    if edit.concepts is not None:
        if not edit.concepts or len(edit.concepts) != len(edit.weights or ()):
            raise ValueError("set needs as many weights as concepts (at least one); fix: "
                             'e.g. {"op": "set", "concepts": [3, 9], "weights": [4.0, 2.0]}')
        if len(set(edit.concepts)) != len(edit.concepts):
            raise ValueError(f"set lists a concept twice {list(edit.concepts)}; fix: list "
                             "each concept once")


def position_label(positions: Positions, span: int | None = None) -> str:
    """Positions as one line of text (a steer-bench row, the app's field): "generated",
    "new_tokens:4" / "new_sentences:2" (a position set with a span) or "0,3,5"."""
    if not isinstance(positions, str):
        return ",".join(map(str, positions))
    return positions if span is None else f"{positions}:{span}"


def parse_position_label(label: str) -> tuple[Positions, int | None]:
    """(positions, span) of a `position_label`; ValueError naming the forms it takes."""
    text = label.strip().replace(" ", "")
    name, _, span = text.partition(":")
    try:
        if name in POSITION_SETS:
            return name, (int(span) if span else None)
        if not span:
            return tuple(int(p) for p in name.split(",") if p), None
    except ValueError:
        pass
    raise ValueError(f"positions {label!r}: use one of {', '.join(POSITION_SETS)}, a set with "
                     "a span like new_tokens:4 or new_sentences:3, or token indices like 0,3,5")


def check_positions(positions: Positions) -> None:
    if not isinstance(positions, (str, tuple)):
        raise ValueError(f"positions={positions!r} must be one of {POSITION_SETS} or a list "
                         f"of token indices; fix: e.g. \"positions\": [{positions!r}]")
    if isinstance(positions, str):
        if positions not in POSITION_SETS:
            raise ValueError(f"positions={positions!r}; fix: use one of {POSITION_SETS} or "
                             "a list of token indices")
        return
    if (not positions or any(not isinstance(p, int) or isinstance(p, bool) or p < 0
                             for p in positions)):
        raise ValueError(f"positions={list(positions)[:8]} must be a non-empty list of token "
                         "indices >= 0 (absolute, from the start of the prompt); fix the list")
    if len(positions) > MAX_POSITIONS:
        raise ValueError(f"positions lists {len(positions):,} indices, more than "
                         f"MAX_POSITIONS={MAX_POSITIONS:,}; fix: use \"all\" or fewer indices")


# ---- against a model ------------------------------------------------------------------------
def validate_spec(spec: SteeringSpec, cfg: Any) -> SteeringSpec:
    """`spec` checked against a model's config (`model.cfg`): concept heads, concept ids,
    positions, vector sizes, top-k capacity. Returns `spec`; ValueError in one line naming the
    edit's field and the fix. `steer` calls it; callers call it to refuse a spec up front."""
    if not cfg.has_concepts:
        raise ValueError(f"steering edits predicted concepts, but mix_mode={cfg.mix_mode!r} "
                         "has no concept head; fix: steer a CoCoMix model (interleave or add)")
    for edit in spec.edits:
        _check_range(([edit.concept] if edit.concept is not None else [])
                     + list(edit.concepts or ()), cfg.n_concepts)
        if isinstance(edit.positions, tuple) and max(edit.positions) >= cfg.n_ctx:
            raise ValueError(f"position {max(edit.positions)} is out of range (n_ctx="
                             f"{cfg.n_ctx}); fix: use token indices 0..{cfg.n_ctx - 1}")
        if edit.op == "vector":
            _check_vector(edit, cfg.d_model)
    _check_capacity(spec, cfg.concept_top_k, cfg.n_concepts)
    return spec


def _check_range(ids: Sequence[int], n_concepts: int) -> None:
    bad = [c for c in ids if c >= n_concepts]
    if bad:
        raise ValueError(f"concept id(s) {bad[:8]} out of range: the model has {n_concepts} "
                         f"concepts; fix: use ids 0..{n_concepts - 1}")


def _check_vector(edit: Edit, d_model: int) -> None:
    if (edit.concept is None) == (edit.vector is None):
        raise ValueError("vector needs a concept (its compressor row) or a vector, not both; "
                         'fix: {"op": "vector", "concept": 12, "value": 2.0}')
    if edit.vector is not None and len(edit.vector) != d_model:
        raise ValueError(f"vector has {len(edit.vector)} values but d_model={d_model}; fix: "
                         f"pass a vector of {d_model} values (or a concept id)")


def _check_capacity(spec: SteeringSpec, top_k: int, n_concepts: int) -> None:
    forced = {e.concept for e in spec.edits if e.op == "force"}
    banned = {e.concept for e in spec.edits if e.op == "ban"}
    if forced & banned:
        raise ValueError(f"concept(s) {sorted(forced & banned)} are both forced and banned; "
                         "fix: drop one of the two edits")
    if len(forced) > top_k:
        raise ValueError(f"{len(forced)} concepts are forced but the top-k holds {top_k}; "
                         f"fix: force at most {top_k}")
    if len(banned) > n_concepts - top_k:
        raise ValueError(f"{len(banned)} concepts are banned, leaving fewer than top-k="
                         f"{top_k}; fix: ban at most {n_concepts - top_k}")


@contextmanager
def steer(model, spec: SteeringSpec | Mapping,
          prompt_len: int | None = None) -> Iterator[Steering]:
    """Apply `spec` (or its dict form) to every forward of `model` inside the block, through
    hooks.py's `Steering`; they are removed on exit and on error.

    prompt_len: tokens of the prompt ("prompt" / "generated" positions); default: the token
    count of the first forward inside the block.
    """
    spec = spec if isinstance(spec, SteeringSpec) else SteeringSpec.from_dict(spec)
    validate_spec(spec, model.cfg)
    missing = spec.needs_std()
    if missing:
        raise ValueError(f"{missing[0].op} on concept {missing[0].concept} is in catalogue "
                         "logit stds but has no std; fix: spec.resolve(run) (the run's "
                         "catalogue), or give the edit std=... or unit='prompt' / 'logit'")
    state = Steering(model, spec, prompt_len)
    handle = model.register_forward_pre_hook(state.before_forward, with_kwargs=True)
    try:
        with model.hooks(fwd_hooks=state.fwd_hooks()):
            yield state
    finally:
        handle.remove()
