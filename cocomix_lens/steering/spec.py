"""`SteeringSpec`: a JSON-serialisable list of edits on a CoCoMix model's predicted concepts.

An edit names an operation (ops.py holds the registry and what each one does), a concept and
the token positions it applies to: "prompt" (positions < prompt length), "generated" (the
rest), "all", or a list of absolute token indices. Position t is the concept slot computed
after token t, which predicts token t + 1: an edit at the last prompt position changes the
first generated token, a "generated" edit acts from the second one on.

    spec = SteeringSpec().scale(123, 4.0).force(7, positions="generated")
    spec.save("spec.json"); SteeringSpec.load("spec.json") == spec
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cocomix_lens.data.files import atomic_write_json

FORMAT_VERSION = 1
POSITION_SETS = ("prompt", "generated", "all")
Positions = str | tuple[int, ...]


@dataclass(frozen=True)
class Edit:
    """One edit. Which fields an operation uses is listed in ops.OPS[op].fields."""

    op: str
    """scale | add | force | ban | set | vector."""
    concept: int | None = None
    """Concept (SAE latent) id; `set` uses `concepts` instead."""
    value: float | None = None
    """scale: factor on the logit; add: amount in logit stds; vector: alpha."""
    positions: Positions = "all"
    """"prompt", "generated", "all" or absolute token indices."""
    concepts: tuple[int, ...] | None = None
    """set: the concepts that replace the top-k."""
    weights: tuple[float, ...] | None = None
    """set: their weights (the values the compressor multiplies)."""
    vector: tuple[float, ...] | None = None
    """vector: a d_model direction to add instead of the compressor row of `concept`."""
    std: float | None = None
    """add: the concept's logit std (SteeringSpec.with_stds fills it from the catalogue);
    without it, the std of the concept's logit measured on the prompt."""

    def __post_init__(self) -> None:
        # Lists from JSON become tuples, so specs compare and hash by value.
        for name in ("concepts", "weights", "vector"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if isinstance(self.positions, (list, range)):
            object.__setattr__(self, "positions", tuple(self.positions))
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

    def scale(self, concept: int, factor: float, positions: Positions = "all") -> SteeringSpec:
        """Multiply concept's predicted logit by `factor` (the paper's steering)."""
        return self.add_edit(Edit("scale", concept, factor, positions))

    def add(self, concept: int, stds: float, positions: Positions = "all",
            std: float | None = None) -> SteeringSpec:
        """Add `stds` standard deviations of the concept's logit to it."""
        return self.add_edit(Edit("add", concept, stds, positions, std=std))

    def force(self, concept: int, positions: Positions = "all") -> SteeringSpec:
        """Guarantee the concept is in the top-k."""
        return self.add_edit(Edit("force", concept, positions=positions))

    def ban(self, concept: int, positions: Positions = "all") -> SteeringSpec:
        """Guarantee the concept is not in the top-k."""
        return self.add_edit(Edit("ban", concept, positions=positions))

    def set(self, concepts: Sequence[int], weights: Sequence[float],
            positions: Positions = "all") -> SteeringSpec:
        """Replace the top-k by `concepts` with `weights`."""
        return self.add_edit(Edit("set", positions=positions, concepts=tuple(concepts),
                                  weights=tuple(weights)))

    def add_vector(self, concept: int | None, alpha: float, positions: Positions = "all",
                   vector: Sequence[float] | None = None) -> SteeringSpec:
        """Add alpha * (compressor row of `concept`, or `vector`) to c_t."""
        return self.add_edit(Edit("vector", concept, alpha, positions,
                                  vector=None if vector is None else tuple(map(float, vector))))

    def with_stds(self, logit_std) -> SteeringSpec:
        """This spec with `std` filled in for every add edit that has none, from `logit_std`
        (indexable by concept id: a [n_concepts] tensor or array, a dict, or the catalogue's
        `logit_std` column), so the JSON records the stds the edits used."""
        return replace(self, edits=tuple(
            replace(e, std=float(logit_std[e.concept])) if e.op == "add" and e.std is None
            else e for e in self.edits))

    def with_catalogue_stds(self, run) -> SteeringSpec:
        """`with_stds` from the run's catalogue (`logit_std` over validation tokens) when an
        add edit lacks a std and the run has a catalogue; else this spec unchanged."""
        if not any(e.op == "add" and e.std is None for e in self.edits):
            return self
        if not run.has("catalogue"):
            return self
        return self.with_stds(run.catalogue.concepts["logit_std"])

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
        return cls(tuple(edit_from_dict(e) for e in blob["edits"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> SteeringSpec:
        try:
            blob = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"steering spec is not valid JSON ({err}); fix the file") from None
        if not isinstance(blob, dict):
            raise ValueError('a steering spec is a JSON object; fix: {"edits": [...]}')
        return cls.from_dict(blob)

    def save(self, path: str | Path) -> Path:
        atomic_write_json(path, self.to_dict())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> SteeringSpec:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"steering spec {path} not found; fix: pass a JSON file "
                                    "written by SteeringSpec.save")
        return cls.from_json(path.read_text(encoding="utf-8"))


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
    from cocomix_lens.steering.ops import OPS

    if edit.op not in OPS:
        raise ValueError(f"unknown steering op {edit.op!r}; fix: use one of {', '.join(OPS)}")
    spec = OPS[edit.op]
    for name in spec.required:
        if getattr(edit, name) is None:
            raise ValueError(f"steering op {edit.op!r} needs {name!r}; fix: {spec.example}")
    extra = [f.name for f in fields(Edit) if f.name not in ("op", "positions")
             and f.name not in spec.fields and getattr(edit, f.name) is not None]
    if extra:
        raise ValueError(f"steering op {edit.op!r} takes no {extra}; fix: {spec.example}")
    _check_ids(edit)
    for name in ("value", "std", "weights", "vector"):
        values = getattr(edit, name)
        values = values if isinstance(values, tuple) else (values,)
        if any(v is not None and not math.isfinite(v) for v in values):
            raise ValueError(f"steering op {edit.op!r} has a non-finite {name} ({values}); "
                             "fix: pass finite numbers")
    if edit.std is not None and edit.std <= 0:
        raise ValueError(f"std={edit.std} must be > 0; fix: pass the concept's logit std")
    check_positions(edit.positions)


def _check_ids(edit: Edit) -> None:
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


def check_positions(positions: Positions) -> None:
    if isinstance(positions, str):
        if positions not in POSITION_SETS:
            raise ValueError(f"positions={positions!r}; fix: use one of {POSITION_SETS} or "
                             "a list of token indices")
        return
    if (not positions or any(not isinstance(p, int) or isinstance(p, bool) or p < 0
                             for p in positions)):
        raise ValueError(f"positions={list(positions)} must be a non-empty list of token "
                         "indices >= 0 (absolute, from the start of the prompt); fix the list")
