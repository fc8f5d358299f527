"""The stored concept catalogue: three Parquet tables and a JSON meta, and read access.

Layout of a catalogue directory (format_version 1):
    concepts.parquet   one row per concept (SAE latent = student concept id), see COLUMNS
    contexts.parquet   contexts: concept, source ("teacher": top SAE activations, "student":
                       top concept logits, rank = 0 best; "teacher_quantile" /
                       "student_quantile": examples across the range, rank = bin, 0 lowest),
                       value, position, document, left, token, right (the active token and
                       its context as text)
    metadata.parquet   corpus metadata each concept concentrates on: concept, key, value,
                       count, share, lift (see catalogue.metadata)
    activity.parquet   every active entry on the first validation tokens: source ("teacher":
                       SAE latent > 0, value its activation; "student": in the student's
                       top-k, value its logit), position, concept (catalogues built before it
                       have none)
    meta.json          format version, tokenizer sha256, fingerprints of the sources (teacher,
                       SAE, student, labels, shards), build settings, the mean concept vector

    cat = Catalogue.open("runs/demo/catalogue")
    cat[12]                      # ConceptRecord: name, densities, tokens, contexts, metadata
    cat.search("river")          # concepts whose name, tokens or contexts mention it
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cocomix_lens.catalogue.contexts import mark
from cocomix_lens.data.files import atomic_open, atomic_write_json, read_versioned_json
from cocomix_lens.remedy import Remedy, attach, remedied

FORMAT_VERSION = 1
META = "meta.json"
TABLES = ("concepts", "contexts", "metadata")
OPTIONAL_TABLES = ("activity",)  # absent from catalogues built before it
SOURCES = ("teacher", "student")  # the two readouts contexts are ranked by

COLUMNS = {
    "concept": "concept id (SAE latent index = the student's concept index)",
    "name": "its explanation's head and two keywords ('farming: goat, barn'), else a short "
            "automatic name from the tokens it fires on and promotes",
    "explanation": "what distinguishes its contexts: head — keywords; promoted tokens; the "
                   "ground-truth value it tracks best with its F1 (catalogue.explain)",
    "keywords": "word forms whose sentences it fires in far more often than elsewhere",
    "detection": "AUROC of the explanation's words predicting, on held-out sentences, where "
                 "it fires (0.5 chance, 1 exact; NaN when it never fires there)",
    "detection_units": "held-out sentences it fires in",
    "dead": "never labelled in the training split and never active on the validation split",
    "label_count": "training tokens with this concept among their teacher labels",
    "label_density": "label_count / training tokens",
    "act_density": "fraction of validation tokens where the teacher's SAE latent is > 0",
    "prediction_density": "fraction of validation tokens where it is in the student's top-k",
    "logit_mean": "mean student concept logit over validation tokens",
    "logit_std": "std of the student concept logit over validation tokens",
    "max_act": "largest teacher SAE activation on validation tokens",
    "max_logit": "largest student concept logit on validation tokens",
    "fires_on": "distinct tokens of its top teacher contexts, best first",
    "teacher_tokens": "tokens its SAE decoder row promotes through the teacher's unembedding",
    "teacher_token_logits": "their direct-path logits",
    "student_tokens": "tokens its compressor row W_comp[c] promotes through the student's W_U",
    "student_token_logits": "their direct-path logits",
    "teacher_bottom_tokens": "tokens its SAE decoder row suppresses most",
    "teacher_bottom_token_logits": "their direct-path logits",
    "student_bottom_tokens": "tokens its compressor row suppresses most",
    "student_bottom_token_logits": "their direct-path logits",
    "teacher_logit_hist": "histogram of its decoder row's direct logits over the vocabulary",
    "teacher_logit_range": "(min, max) those bins split evenly",
    "student_logit_hist": "the same for its compressor row",
    "student_logit_range": "(min, max)",
    "teacher_neighbours": "concepts whose SAE decoder rows are closest by cosine",
    "teacher_neighbour_cos": "those cosines",
    "student_neighbours": "concepts whose compressor rows are closest by cosine",
    "student_neighbour_cos": "those cosines",
    "meta_key": "metadata key of its highest-lift value (None if no value has support)",
    "meta_value": "that value",
    "meta_share": "share of its labelled tokens in documents with that value",
    "meta_lift": "share / base rate of that value",
    "truth": "corpora with known latents (the world): the variable value its SAE latent "
             "matches best, from F1 0.5 ('topic=sea'), else ''",
    "truth_f1": "that F1 (sentence-level for topic, act, tense, sentiment), else NaN",
}


@dataclass(frozen=True)
class ConceptRecord:
    """Everything the catalogue knows about one concept; `str(record)` is a readable card."""

    id: int
    info: dict[str, Any]  # the concepts-table row (COLUMNS)
    contexts: pd.DataFrame  # its rows of contexts.parquet
    metadata: pd.DataFrame  # its rows of metadata.parquet
    activity: pd.DataFrame = field(default_factory=pd.DataFrame)  # its activity.parquet rows

    def __getattr__(self, name: str) -> Any:
        info = self.__dict__.get("info", {})
        if name in info:
            return info[name]
        raise AttributeError(f"ConceptRecord has no field {name!r}; fields: {sorted(info)}")

    def __str__(self) -> str:
        from cocomix_lens.catalogue.render import concept_card

        return concept_card(self)


class Catalogue:
    """The concept catalogue of one run: `Catalogue.open(dir)`, `cat[c]`, `cat.search(q)`."""

    def __init__(self, concepts: pd.DataFrame, contexts: pd.DataFrame,
                 metadata: pd.DataFrame, meta: dict[str, Any],
                 root: Path | None = None, activity: pd.DataFrame | None = None) -> None:
        self.concepts = _with_defaults(concepts)  # indexed by concept id
        self.contexts = contexts
        self.metadata = metadata
        self.activity = activity if activity is not None else pd.DataFrame(
            {"source": [], "position": [], "concept": [], "value": []})
        self.meta = meta
        self.root = root
        self._by_concept: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.concepts)

    def __repr__(self) -> str:
        return (f"Catalogue({len(self)} concepts, {int(self.concepts['dead'].sum())} dead, "
                f"root={self.root})")

    def __getitem__(self, concept: int) -> ConceptRecord:
        c = self.check_id(concept)
        return ConceptRecord(id=c, info={"concept": c, **self.concepts.loc[c].to_dict()},
                             contexts=self._rows("contexts", c), metadata=self._rows("metadata", c),
                             activity=self._rows("activity", c))

    def check_id(self, concept: Any) -> int:
        """`concept` as an int id of this catalogue, or a one-line ValueError."""
        try:
            c = int(concept)
        except (TypeError, ValueError):
            raise ValueError(f"concept id must be an integer, got {concept!r}") from None
        if not 0 <= c < len(self):
            raise ValueError(f"concept {c} does not exist; ids run from 0 to {len(self) - 1}")
        return c

    def names(self, ids: Any) -> list[str]:
        """Names of the concept ids `ids` (an iterable of ints)."""
        return self.concepts["name"].to_numpy()[list(ids)].tolist()

    @property
    def vector_mean(self) -> list[float] | None:
        """Mean student concept vector c_t over the validation tokens (for mean ablation)."""
        return self.meta.get("vector_mean")

    def _rows(self, table: str, c: int) -> pd.DataFrame:
        # one groupby per table, on first use: a record is then a dictionary lookup
        if table not in self._by_concept:
            df = getattr(self, table)
            self._by_concept[table] = df.groupby("concept").indices if len(df) else {}
        idx = self._by_concept[table].get(c)
        df = getattr(self, table)
        return df.iloc[idx].reset_index(drop=True) if idx is not None else df.iloc[:0]

    def search(self, query: str, limit: int | None = 20) -> pd.DataFrame:
        """Concepts matching `query` in their name, tokens or contexts, best first."""
        from cocomix_lens.catalogue.search import search

        return search(self, query, limit)

    def contrast(self, model: Any, texts_a: list[str], texts_b: list[str]) -> pd.DataFrame:
        """`contrast(model, texts_a, texts_b, catalogue=self)`: concepts ranked by the
        difference of the model's mean predicted logits on the two groups of texts."""
        from cocomix_lens.catalogue.contrast import contrast

        return contrast(model, texts_a, texts_b, catalogue=self)

    def context_lines(self, concept: int, source: str = "teacher") -> list[str]:
        """The concept's contexts from `source` as marked one-line strings, best first."""
        if source not in SOURCES:
            raise ValueError(f"unknown context source {source!r}; choose one of {SOURCES}")
        rows = self[concept].contexts
        rows = rows[rows["source"] == source]
        return [mark(a, b, c) for a, b, c in zip(rows["left"], rows["token"], rows["right"])]

    # ------------------------------------------------------------------ files

    def save(self, root: str | Path) -> None:
        """Write the three tables, then meta.json (last: its presence marks a complete set)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        (root / META).unlink(missing_ok=True)
        tables = {"concepts": self.concepts.reset_index(), "contexts": self.contexts,
                  "metadata": self.metadata, "activity": self.activity}
        for name, df in tables.items():
            with atomic_open(root / f"{name}.parquet", "wb") as f:
                pq.write_table(pa.Table.from_pandas(df, preserve_index=False), f)
        atomic_write_json(root / META, self.meta)

    @classmethod
    def open(cls, root: str | Path, sources: dict[str, str] | None = None) -> Catalogue:
        """Load a catalogue; with `sources` (fingerprints of the run's current teacher, SAE,
        student, labels and shards) refuse one built from other versions of them."""
        import pyarrow.parquet as pq

        root = Path(root)
        meta = read_meta(root)
        if sources is not None:
            check_fresh(root, meta, sources)
        frames = {name: pq.read_table(root / f"{name}.parquet").to_pandas() for name in TABLES
                  + tuple(t for t in OPTIONAL_TABLES if (root / f"{t}.parquet").is_file())}
        concepts = frames["concepts"].set_index("concept")
        return cls(concepts, frames["contexts"], frames["metadata"], meta, root,
                   activity=frames.get("activity"))


DEFAULTS = {"explanation": "", "keywords": None, "detection": float("nan"),
            "detection_units": 0, "truth": "", "truth_f1": float("nan")}
"""Columns a catalogue built before them lacks, and what they read as there."""


def _with_defaults(concepts: pd.DataFrame) -> pd.DataFrame:
    missing = {c: v for c, v in DEFAULTS.items() if c not in concepts.columns}
    if not missing:
        return concepts
    if "keywords" in missing:
        missing["keywords"] = [[] for _ in range(len(concepts))]
    return concepts.assign(**missing)


def read_meta(root: Path) -> dict[str, Any]:
    """meta.json of a catalogue directory, with one-line errors if absent or outdated."""
    build = Remedy("catalog", {"run": root.parent}, verb="build it with")
    with remedied(build):
        return read_versioned_json(
            root / META, FORMAT_VERSION,
            missing=f"no concept catalogue in {root} ({META} missing); fix: {build}",
            fix=rebuild(root))


def rebuild(root: Path) -> Remedy:
    """The fix of a stale or damaged catalogue in `root` (RUN/catalogue)."""
    return Remedy("catalog", {"run": root.parent, "force": True}, verb="rebuild it with")


def check_fresh(root: Path, meta: dict[str, Any], sources: dict[str, str]) -> None:
    """Raise if the catalogue was built from other sources than `sources`."""
    built = meta.get("sources", {})
    changed = sorted(k for k in set(built) | set(sources) if built.get(k) != sources.get(k))
    if changed:
        raise attach(ValueError(f"the concept catalogue in {root} is stale: "
                                f"{', '.join(changed)} changed since it was built; fix: "
                                f"{rebuild(root)}"), rebuild(root))
