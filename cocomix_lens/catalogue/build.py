"""Building the concept catalogue from a teacher + SAE, a CoCoMix student, shards and labels.

    cat = build_catalogue("runs/demo/catalogue", teacher=t, sae=s, student=m, shards=sh,
                          labels=cache, progress=progress_bar)

Work, all vectorised over tokens and concepts (see scan.py, metadata.py, readout.py):
one pass over the validation windows (teacher SAE + student concept head), bincounts over the
label cache, two [C, d] @ [d, vocab] readouts, one sparse product for metadata, and one
batched decode of the distinct context windows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from cocomix_lens.catalogue.contexts import quantile_examples, render_contexts
from cocomix_lens.catalogue.explain import Units, explain, text_units
from cocomix_lens.catalogue.metadata import categorical_keys, concentration
from cocomix_lens.catalogue.readout import (
    cosine_neighbours,
    direct_logits,
    logit_histogram,
    short_name,
    top_tokens,
    vocabulary,
)
from cocomix_lens.catalogue.scan import Scan, scan_split
from cocomix_lens.catalogue.store import FORMAT_VERSION, Catalogue
from cocomix_lens.concepts.extractor import ConceptExtractor, decoder_directions
from cocomix_lens.progress import Progress

log = logging.getLogger(__name__)


@dataclass
class CatalogueConfig:
    """How a catalogue is built (recorded in its meta.json)."""

    split: str = "val"
    """Split scanned for densities, logit statistics and max-activating contexts."""
    label_split: str = "train"
    """Label-cache split for label densities and metadata concentration."""
    n_examples: int = 8
    """Max-activating contexts kept per concept and readout."""
    context_before: int = 12
    """Tokens of context before the active token."""
    context_after: int = 4
    """Tokens of context after it."""
    n_tokens: int = 10
    """Top output tokens kept per concept and unembedding."""
    batch_size: int = 16
    """Validation windows per forward pass."""
    window: int | None = None
    """Window length; None = the label cache's window (what the student trained on)."""
    meta_min_count: int = 5
    """Labelled tokens a metadata value needs before its lift is reported."""
    meta_top: int = 3
    """Metadata values kept per concept and key."""
    activity_tokens: int = 65_536
    """First validation tokens whose every active entry is stored (activity.parquet): the
    explanations, activation histograms and quantile-binned contexts come from them."""
    quantile_bins: int = 4
    """Activation bins of the quantile-binned contexts."""
    per_bin: int = 2
    """Contexts kept per bin."""
    n_neighbours: int = 5
    """Nearest concepts by cosine of SAE decoder rows and of compressor rows."""
    histogram_bins: int = 24
    """Bins of the direct-logit histograms over the vocabulary."""


def build_catalogue(out: str | Path, *, teacher: nn.Module, sae: nn.Module,
                    student: nn.Module, shards: Any, labels: Any,
                    config: CatalogueConfig | None = None,
                    sources: dict[str, str] | None = None,
                    truth: dict[int, tuple[str, float]] | None = None,
                    progress: Progress | None = None) -> Catalogue:
    """Build the catalogue of `student`'s concepts into `out` and return it (as loaded).

    `shards` is a `TokenShards`, `labels` the `LabelCache` the student was trained on,
    `sources` fingerprints of the inputs stored for staleness checks (default: hashes of the
    given modules and files). `truth` (corpora with known latents: concept -> (its
    best-matching "variable=value", F1), `cocomix_lens.groundtruth.concept_matches`) fills the
    `truth`/`truth_f1` columns; from F1 0.5 the value heads the concept's explanation and name.
    `progress(iterable, total, desc)` wraps the validation scan.
    """
    cfg = config or CatalogueConfig()
    t0 = time.perf_counter()
    extractor = ConceptExtractor(teacher, sae, method="activation")
    n_c = _check_inputs(extractor, student, labels, shards, cfg)
    window = min(cfg.window or labels.window, student.cfg.n_ctx, teacher.cfg.n_ctx)
    tokens = shards.split(cfg.split)
    scan = scan_split(tokens, extractor, student, window=window, n_examples=cfg.n_examples,
                      batch_size=cfg.batch_size, activity_limit=cfg.activity_tokens,
                      progress=progress)
    vocab = vocabulary(shards.tokenizer, shards.tokenizer.get_vocab_size())
    activity = scan.activity()
    contexts = _context_table(scan, activity, tokens, shards, cfg)
    metadata = _metadata_table(labels, shards, n_c, cfg)
    concepts = _concept_table(scan, labels, cfg, n_c)
    concepts = concepts.join(_token_columns(teacher, sae, student, vocab, cfg))
    concepts = _add_truth(_add_names(concepts, contexts, metadata), truth or {})
    concepts = _add_explanations(concepts, activity["teacher"], tokens, vocab, shards.eos_id,
                                 truth or {}, cfg.activity_tokens)
    meta = {
        "format_version": FORMAT_VERSION, "n_concepts": n_c,
        "tokenizer_sha256": shards.tokenizer_sha256,
        "sources": sources if sources is not None else default_sources(
            teacher, sae, student, shards, labels, cfg.split),
        "config": asdict(cfg), "window": window, "student_top_k": student.cfg.concept_top_k,
        "label_k": labels.k, "positions": scan.n_positions,
        "label_tokens": int(labels.meta["splits"][cfg.label_split]["tokens"]),
        "vector_mean": (scan.vector_sum / max(scan.n_positions, 1)).tolist(),
        "build_s": round(time.perf_counter() - t0, 3),
    }
    Catalogue(concepts, contexts, metadata, meta, activity=_activity_table(activity)).save(out)
    log.info("catalogue of %d concepts written to %s in %.1f s", n_c, out, meta["build_s"])
    return Catalogue.open(out)


def default_sources(teacher: nn.Module, sae: nn.Module, student: nn.Module, shards: Any,
                    labels: Any, split: str) -> dict[str, str]:
    """Fingerprints of in-memory inputs: module hashes, the label cache's and shard's sha."""
    from cocomix_lens.concepts.teacher import module_sha256, sae_sha256
    from cocomix_lens.data.files import sha256_json

    return {"teacher": module_sha256(teacher), "sae": sae_sha256(sae),
            "student": module_sha256(student), "labels": sha256_json(labels.meta),
            "shards": shards.manifest["splits"][split]["sha256"]}


def _check_inputs(extractor: ConceptExtractor, student: nn.Module, labels: Any, shards: Any,
                  cfg: CatalogueConfig) -> int:
    n_c = int(extractor.n_latents)
    if not getattr(student.cfg, "has_concepts", False):
        raise ValueError("the student has no concept head (mix_mode "
                         f"{student.cfg.mix_mode!r}); pass the CoCoMix student, not the baseline")
    if student.cfg.n_concepts != n_c or int(labels.meta["n_latents"]) != n_c:
        raise ValueError(f"the student has {student.cfg.n_concepts} concepts, the SAE {n_c} "
                         f"latents, the labels {labels.meta['n_latents']}; pass the student, "
                         "SAE and label cache of one run")
    for split, where in ((cfg.split, shards.manifest["splits"]),
                         (cfg.label_split, labels.meta["splits"])):
        if split not in where:
            raise ValueError(f"split {split!r} is missing (have {', '.join(where)}); set "
                             "CatalogueConfig.split / label_split to one that exists")
    return n_c


def _concept_table(scan: Scan, labels: Any, cfg: CatalogueConfig, n_c: int) -> pd.DataFrame:
    ids = np.asarray(labels.array(cfg.label_split, "ids"))
    scores = np.asarray(labels.array(cfg.label_split, "scores"))
    real = ids[scores != 0].astype(np.int64)  # a zero score is top-k padding, not a label
    label_count = np.bincount(real, minlength=n_c)
    n_pos = max(scan.n_positions, 1)
    mean, std = scan.logit_mean_std()
    act_count = scan.act_count.numpy()
    return pd.DataFrame({
        "concept": np.arange(n_c),
        "dead": (label_count == 0) & (act_count == 0),
        "label_count": label_count,
        "label_density": label_count / max(len(ids), 1),
        "act_density": act_count / n_pos,
        "prediction_density": scan.pred_count.numpy() / n_pos,
        "logit_mean": mean.numpy(), "logit_std": std.numpy(),
        "max_act": scan.top_act.values[:, 0].clamp(min=0).numpy(),
        "max_logit": scan.top_logit.values[:, 0].numpy(),
    }).set_index("concept")


def _token_columns(teacher: nn.Module, sae: nn.Module, student: nn.Module, vocab: list[str],
                   cfg: CatalogueConfig) -> pd.DataFrame:
    """Per readout (SAE decoder rows through the teacher, compressor rows through the
    student): top and bottom direct-path output tokens, the logit histogram over the
    vocabulary, and the nearest rows by cosine."""
    words = np.asarray(vocab + [""], dtype=object)  # ids past the tokenizer decode to ""
    cols = {}
    for name, dirs, model in (("teacher", decoder_directions(sae), teacher),
                              ("student", student.concept.W_comp.detach(), student)):
        logits = direct_logits(dirs, model)
        for kind, sign in (("tokens", 1.0), ("bottom_tokens", -1.0)):
            ids, vals = top_tokens(sign * logits, cfg.n_tokens)
            ids = ids.clamp(max=len(vocab)).numpy()
            cols[f"{name}_{kind}"] = list(map(list, words[ids]))
            cols[f"{name}_{kind[:-1]}_logits"] = list(map(list, sign * vals.numpy().astype(float)))
        counts, span = logit_histogram(logits, cfg.histogram_bins)
        cols[f"{name}_logit_hist"] = list(map(list, counts.numpy()))
        cols[f"{name}_logit_range"] = list(map(list, span.numpy().astype(float)))
        ids, cos = cosine_neighbours(dirs, cfg.n_neighbours)
        cols[f"{name}_neighbours"] = list(map(list, ids.numpy()))
        cols[f"{name}_neighbour_cos"] = list(map(list, cos.numpy().astype(float)))
    return pd.DataFrame(cols)


def _context_table(scan: Scan, activity: dict[str, Any], tokens: np.ndarray, shards: Any,
                   cfg: CatalogueConfig) -> pd.DataFrame:
    parts = []
    for source, (pos, concept, value) in activity.items():  # quantile-binned contexts
        q = quantile_examples(pos, concept, value, cfg.quantile_bins, cfg.per_bin)
        parts.append(q.assign(source=f"{source}_quantile", value=q["value"].astype(float)))
    for source, top in (("teacher", scan.top_act), ("student", scan.top_logit)):
        values, positions = top.values.numpy(), top.positions.numpy()
        keep = positions >= 0
        if source == "teacher":  # an SAE latent at 0 is not active: not an example of it
            keep &= values > 0
        concept, rank = np.nonzero(keep)
        parts.append(pd.DataFrame({"concept": concept, "source": source, "rank": rank,
                                   "value": values[keep].astype(float),
                                   "position": positions[keep]}))
    table = pd.concat(parts, ignore_index=True)[
        ["concept", "source", "rank", "value", "position"]]
    text = render_contexts(table["position"].to_numpy(), tokens, shards, cfg.split,
                           cfg.context_before, cfg.context_after)
    return table.assign(**text)


def _metadata_table(labels: Any, shards: Any, n_c: int, cfg: CatalogueConfig) -> pd.DataFrame:
    split = cfg.label_split
    docs = shards.documents(split)
    keys = categorical_keys(docs)
    ids = np.asarray(labels.array(split, "ids")).astype(np.int64)
    ids[np.asarray(labels.array(split, "scores")) == 0] = -1  # padding, not labels
    doc_of = shards.document_of(split, np.arange(len(ids)))
    cols = concentration(ids, doc_of, len(docs), n_c, keys, cfg.meta_min_count, cfg.meta_top)
    table = pd.DataFrame(cols)
    return table.sort_values(["concept", "lift"], ascending=[True, False],
                             kind="stable").reset_index(drop=True)


def _add_truth(concepts: pd.DataFrame, truth: dict[int, tuple[str, float]]) -> pd.DataFrame:
    """The value each concept tracks best ("topic=sea") and its F1, '' / NaN without one."""
    match = pd.Series(truth, dtype=object).reindex(concepts.index)
    names = [m[0] if isinstance(m, tuple) else "" for m in match]
    f1 = [m[1] if isinstance(m, tuple) else np.nan for m in match]
    return concepts.assign(truth=names, truth_f1=np.asarray(f1, dtype=np.float64))


def _add_names(concepts: pd.DataFrame, contexts: pd.DataFrame,
               metadata: pd.DataFrame) -> pd.DataFrame:
    teacher = contexts[contexts["source"] == "teacher"]
    fires = (teacher.assign(word=teacher["token"].str.strip())
             .drop_duplicates(["concept", "word"]).groupby("concept")["word"].agg(list))
    fires_on = fires.reindex(concepts.index)
    fires_on = [f if isinstance(f, list) else [] for f in fires_on]
    names = [short_name(f, t) for f, t in zip(fires_on, concepts["teacher_tokens"])]
    best = metadata.drop_duplicates("concept").set_index("concept")  # highest lift first
    best = best.reindex(concepts.index)
    out = concepts.assign(name=names, fires_on=fires_on, meta_key=best["key"],
                          meta_value=best["value"], meta_share=best["share"],
                          meta_lift=best["lift"])
    return out[["name"] + [c for c in out.columns if c != "name"]]


def _activity_table(activity: dict[str, Any]) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"source": source, "position": pos, "concept": concept,
                                    "value": value})
                      for source, (pos, concept, value) in activity.items()],
                     ignore_index=True)


def _add_explanations(concepts: pd.DataFrame, teacher: tuple[np.ndarray, ...],
                      tokens: np.ndarray, vocab: list[str], eos_id: int,
                      truth: dict[int, tuple[str, float]], limit: int) -> pd.DataFrame:
    """Explanation, keywords and detection score (catalogue.explain) from the sentences of
    the first `limit` validation tokens; the name becomes the explanation's head phrase."""
    from cocomix_lens.data.sentences import sentence_ends

    scanned = np.asarray(tokens[:limit], dtype=np.int64)
    units = Units(scanned, text_units(scanned, sentence_ends(vocab, eos_id)))
    pos, concept, _ = teacher
    table = explain(units, pos, concept, len(concepts), vocab,
                    promoted=list(concepts["teacher_tokens"]), truth=truth)
    out = concepts.join(table[["explanation", "keywords", "detection", "detection_units"]])
    named = [_head_name(h, k) for h, k in zip(table["head"], table["keywords"])]
    return out.assign(name=[n or old for n, old in zip(named, out["name"])])


def _head_name(head: str, keywords: list[str]) -> str:
    """'farming: goat, barn' — the head and up to two further keywords ('' without a head)."""
    rest = [k for k in keywords if k != head][:2]
    return f"{head}: {', '.join(rest)}" if head and rest else head
