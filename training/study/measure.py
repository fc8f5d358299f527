"""Measurements of the study's trained students that need the models: linear probes of the
world's ground-truth variables (claim h) and steering against its random control (claim f).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cocomix_lens.rundir import LAYOUT
from training.sampler import sequential_starts

log = logging.getLogger(__name__)

RIDGE = 1e-2  # ridge penalty of the probes (relative to the standardized features' scale)
STEER_STDS = 4.0  # `add` edit strength, in stds of the concept's logit
N_STEER_CONCEPTS = 3


# ---- claim h: linear probes -------------------------------------------------------------------
def ground_truth(shards_dir: Path):
    """The shards' per-token ground truth (a world corpus), or None without one."""
    try:
        from cocomix_lens.data.truth import GroundTruth
    except ImportError:  # the world corpus is not part of this checkout
        return None
    return GroundTruth.open(shards_dir) if GroundTruth.exists(shards_dir) else None


def probe_hook(model, layer: int) -> str:
    """The residual stream entering block `layer`, token rows only: what a CoCoMix model's
    concept head reads (`concept.hook_in`), the plain stream for a mix_mode none model."""
    return "concept.hook_in" if model.cfg.has_concepts else f"blocks.{layer}.hook_resid_pre"


@torch.no_grad()
def hidden_states(model, shards: Any, split: str, n_tokens: int, seq_len: int,
                  layer: int, batch: int = 16) -> tuple[torch.Tensor, np.ndarray]:
    """Hidden states [N, d_model] at `probe_hook` over the first windows of `split` spread
    evenly, and the token positions [N] they belong to."""
    starts = sequential_starts(shards.n_tokens(split), seq_len, limit=max(n_tokens // seq_len, 1))
    hook = probe_hook(model, layer)
    feats = []
    for i in range(0, len(starts), batch):
        x, _ = shards.batch(split, starts[i:i + batch], seq_len)
        _, cache = model.run_with_cache(x.to(model.device), names_filter=hook)
        feats.append(cache[hook].flatten(0, 1).float().cpu())
    positions = (starts[:, None] + np.arange(seq_len)).reshape(-1)
    return torch.cat(feats), positions


def ridge_probe_scores(x_train: torch.Tensor, y_train: np.ndarray, x_test: torch.Tensor,
                       n_classes: int, ridge: float = RIDGE) -> torch.Tensor:
    """[N_test, n_classes] scores of a ridge-regression probe onto one-hot targets (closed
    form, deterministic), features standardized on the train set. x [N, d]; y int [N] in
    [0, n_classes); the predicted class is the argmax."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    a = torch.cat([(x_train - mu) / sd, torch.ones(len(x_train), 1)], 1).double()
    b = torch.nn.functional.one_hot(torch.as_tensor(y_train, dtype=torch.long),
                                    n_classes).double()
    eye = torch.eye(a.shape[1], dtype=torch.float64) * ridge * len(a)
    w = torch.linalg.solve(a.T @ a + eye, a.T @ b)
    t = torch.cat([(x_test - mu) / sd, torch.ones(len(x_test), 1)], 1).double()
    return t @ w


def ridge_probe_accuracy(x_train: torch.Tensor, y_train: np.ndarray, x_test: torch.Tensor,
                         y_test: np.ndarray, n_classes: int, ridge: float = RIDGE) -> float:
    """Accuracy on the test set of `ridge_probe_scores`' predicted classes."""
    pred = ridge_probe_scores(x_train, y_train, x_test, n_classes, ridge).argmax(1).numpy()
    return float((pred == y_test).mean())


def probe_model(model, shards: Any, truth: Any, seq_len: int, layer: int,
                n_tokens: int) -> dict[str, Any]:
    """Probe accuracy (val tokens, fitted on train tokens) per ground-truth variable, its
    majority-class baseline, and the mean over variables."""
    data = {s: hidden_states(model, shards, s, n_tokens, seq_len, layer)
            for s in ("train", "val")}
    per_var = {}
    for var in truth.columns:
        n_classes = len(truth.values(var))
        cols = {s: truth.column(s, var)[pos].astype(np.int64) for s, (_, pos) in data.items()}
        keep = {s: cols[s] >= 0 for s in cols}
        if keep["train"].sum() < 2 or keep["val"].sum() < 1:
            continue
        xt, xv = data["train"][0][keep["train"]], data["val"][0][keep["val"]]
        acc = ridge_probe_accuracy(xt, cols["train"][keep["train"]], xv,
                                   cols["val"][keep["val"]], n_classes)
        majority = np.bincount(cols["train"][keep["train"]], minlength=n_classes).argmax()
        per_var[var] = {"accuracy": acc,
                        "majority": float((cols["val"][keep["val"]] == majority).mean())}
    mean = float(np.mean([v["accuracy"] for v in per_var.values()])) if per_var else np.nan
    return {"accuracy": mean, "per_variable": per_var,
            "hook": probe_hook(model, layer)}


def probe_seed(study: Any, seed: int, truth: Any) -> dict[str, Any]:
    """NTP's and CoCoMix's probe accuracy at the CoCoMix insert layer, for one seed."""
    shards, p = study.ctx.shards(), study.ctx.cfg
    cocomix = study.model("cocomix", seed)
    layer = cocomix.cfg.insert_layer
    out = {}
    for arm, model in (("ntp", study.model("ntp", seed)), ("cocomix", cocomix)):
        out[arm] = probe_model(model, shards, truth, p.seq_len, layer,
                               study.settings.probe_tokens)
    return {"ntp": out["ntp"]["accuracy"], "cocomix": out["cocomix"]["accuracy"],
            "hook": f"input of block {layer}",
            "per_variable": {arm: r["per_variable"] for arm, r in out.items()}}


# ---- claim f: steering -----------------------------------------------------------------------
class SeedView:
    """The pipeline run with one seed's CoCoMix student in place of its own. It claims no
    catalogue: the run's catalogue describes another student, so `add` edits take their
    std from the prompt's logits."""

    def __init__(self, run: Any, student: Any):
        self._run, self.student = run, student

    def has(self, piece: str) -> bool:
        return piece != "catalogue" and self._run.has(piece)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._run, name)


def steer_concepts(run: Any, n: int = N_STEER_CONCEPTS) -> list[int]:
    """The `n` concepts to steer: those `steer-eval --densest` found to steer the run's own
    student (RUN/steering/steering.json, written by `make demo`), else the concepts most often
    first label on validation tokens (taught most, so an edit has something learned to act
    on). Each study seed's student is a different model scored on its own samples, so
    concepts chosen on the run's student are not chosen on the samples that judge them."""
    screened = screened_concepts(run)
    if screened:
        return screened[:n]
    ids = np.asarray(run.labels.array("val" if "val" in run.labels.splits else "train",
                                      "ids"))[:, 0]
    counts = np.bincount(ids.astype(np.int64))
    return [int(c) for c in np.argsort(-counts, kind="stable")[:n]]


def screened_concepts(run: Any) -> list[int]:
    """Concepts that passed `steer-eval --densest`'s screen on the run, densest first."""
    path = Path(run.path) / LAYOUT.pipeline.steering_json
    if not path.is_file():
        return []
    screen = json.loads(path.read_text()).get("screen", [])
    return [int(r["concept"]) for r in screen if r.get("clear")]


def steer_seed(run: Any, student: Any, concepts: list[int], n_samples: int,
               seed: int) -> dict[str, Any]:
    """Mean over `concepts` of the teacher-SAE activation of the concept in text generated
    with `add` (STEER_STDS stds), unsteered, and with the same edit on a random concept."""
    from cocomix_lens.sampling import Sampling
    from cocomix_lens.steering import SteeringSpec
    from cocomix_lens.steering.evaluate import Evaluation, evaluate_steering

    view = SeedView(run, student)
    rows = {"steered": [], "unsteered": [], "control": []}
    for c in concepts:
        # each seed's student has its own logit scale: stds measured on the prompt
        res = evaluate_steering(view, SteeringSpec().add(c, STEER_STDS, unit="prompt"), None,
                                Sampling(seed=seed, max_new_tokens=24),
                                Evaluation(n_samples=n_samples, batch_size=n_samples,
                                           n_boot=200, scorers=("sae_act",)),
                                sae_strength=None)
        arm = res.arms["cocomix"]
        for cond in rows:
            rows[cond].append(arm.estimate("sae_act", cond).mean)
    out: dict[str, Any] = {k: float(np.mean(v)) for k, v in rows.items()}
    out.update(metric="teacher SAE activation of the concept on generated tokens",
               settings={"op": "add", "stds": STEER_STDS, "concepts": concepts,
                         "chosen_by": ("steer-eval --densest screen" if screened_concepts(run)
                                       else "label frequency"),
                         "samples": n_samples, "max_new_tokens": 24})
    return out
