"""inspect(): student concepts, teacher labels, attribution and slot ablation on a micro run,
each against a hooked forward computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cocomix_lens.concepts import ConceptExtractor
from cocomix_lens.inspection import inspect, slot_effects
from cocomix_lens.rundir import Run
from training.cli import main

TEXT = "The ship sailed over the wave to the harbor, and the sailor saw fish."


@pytest.fixture(scope="module")
def run(micro_run):
    return Run.open(micro_run[1])  # the session's run (tests/conftest.py), read only


@pytest.fixture(scope="module")
def result(run):
    return inspect(run, TEXT, k=3)


def _tokens(run):
    return torch.tensor([run.tokenizer.encode(TEXT).ids])


def _next_logprobs(model, tokens, hooks=()):
    """log p(x_{t+1}) at every position t < T-1 of a hooked full forward."""
    with torch.no_grad(), model.hooks(fwd_hooks=list(hooks)):
        logp = model(tokens)[0].log_softmax(-1)
    return logp[:-1].gather(-1, tokens[0, 1:, None])[:, 0]


def test_slot_ablation_delta_equals_a_manual_hooked_forward(run, result):
    model, tokens = run.student, _tokens(run)
    clean = _next_logprobs(model, tokens)
    mean = torch.tensor(run.catalogue.vector_mean)
    rows = result.tokens
    np.testing.assert_allclose(rows["logprob"][:-1], clean.numpy(), atol=1e-5)
    for t in (0, 5, tokens.shape[1] - 2):
        def zero(c, hook, t=t):
            c = c.clone()
            c[0, t] = 0.0
            return c

        def mean_replace(c, hook, t=t):
            c = c.clone()
            c[0, t] = mean
            return c

        for column, hook in (("delta_zero", zero), ("delta_mean", mean_replace)):
            edited = _next_logprobs(model, tokens, [("concept.hook_vector", hook)])
            assert rows[column][t] == pytest.approx(float(edited[t] - clean[t]), abs=1e-5)
    assert math.isnan(rows["delta_zero"].iloc[-1])  # no next token to score


def test_single_concept_ablation_equals_zeroing_its_act(run, result):
    model, tokens = run.student, _tokens(run)
    clean = _next_logprobs(model, tokens)
    shown = result.frame.dropna(subset=["concept_delta"])
    for row in shown.iloc[::11].itertuples():
        def drop(a, hook, t=row.pos, c=row.concept):
            a = a.clone()
            a[0, t, c] = 0.0
            return a

        edited = _next_logprobs(model, tokens, [("concept.hook_acts", drop)])
        assert row.concept_delta == pytest.approx(float(edited[row.pos] - clean[row.pos]),
                                                  abs=1e-5)


def test_attribution_is_act_times_gradient_of_that_positions_next_token_logit(run, result):
    model, tokens = run.student, _tokens(run)
    frame = result.frame.dropna(subset=["attribution"])
    for t in (1, 7):
        store = {}

        def leaf(a, hook):
            store["a"] = a.detach().requires_grad_(True)
            return store["a"]

        with model.hooks(fwd_hooks=[("concept.hook_acts", leaf)]):
            logit = model(tokens)[0, t, tokens[0, t + 1]]
        (grad,) = torch.autograd.grad(logit, store["a"])
        want = (grad * store["a"])[0, t].detach()
        rows = frame[frame["pos"] == t]
        np.testing.assert_allclose(rows["attribution"], want[np.array(rows["concept"])],
                                   atol=1e-6)
        active = rows["active"].to_numpy()
        assert (rows["attribution"][~active] == 0).all()  # inactive concepts contribute nothing


def test_student_rows_are_the_top_k_concepts_with_softmax_probabilities(run, result):
    with torch.no_grad():
        z = run.student(_tokens(run), return_concept_logits=True)[1][0]
    top = z.topk(3, dim=-1)
    student = result.frame.dropna(subset=["student_rank"]).sort_values(["pos", "student_rank"])
    assert student["concept"].tolist() == top.indices.flatten().tolist()
    np.testing.assert_allclose(student["prob"], z.softmax(-1).gather(-1, top.indices).flatten(),
                               rtol=1e-5)
    names = run.catalogue.concepts["name"]
    assert student["name"].tolist() == names[student["concept"]].tolist()


def test_teacher_labels_have_no_zero_score_padding_and_precision_counts_overlap(run, result):
    extractor = ConceptExtractor(run.teacher, run.sae, method=run.labels.meta["method"])
    scores = extractor.scores(_tokens(run))[0]  # [T, C]
    teacher = result.frame.dropna(subset=["teacher_rank"])
    assert (teacher["teacher_score"] > 0).all()
    per_pos = teacher.groupby("pos").size().reindex(range(len(scores)), fill_value=0)
    np.testing.assert_array_equal(per_pos, (scores > 0).sum(-1).clamp(max=3).numpy())
    assert per_pos.iloc[-1] == 0  # the last token has no target, hence no labels
    rows = result.tokens
    for t in range(len(rows)):
        labels = set(teacher.loc[teacher["pos"] == t, "concept"])
        student = set(result.frame.loc[(result.frame["pos"] == t)
                                       & result.frame["student_rank"].notna(), "concept"])
        want = len(student & labels) / 3 if labels else float("nan")
        assert rows["precision_at_k"][t] == pytest.approx(want, nan_ok=True)


def test_slot_effects_of_probes_in_chunks_equal_one_batch(run):
    tokens = _tokens(run)
    whole = slot_effects(run.student, tokens)
    chunked = slot_effects(run.student, tokens, chunk=7)
    for field in ("logprob", "delta_zero", "delta_mean", "attribution"):
        torch.testing.assert_close(getattr(chunked, field), getattr(whole, field),
                                   rtol=1e-5, atol=1e-6)


def test_bad_inputs_are_one_line_errors(run):
    with pytest.raises(ValueError, match="at least two"):
        inspect(run.student, "a")
    with pytest.raises(ValueError, match="k=0 must be between 1 and"):
        inspect(run.student, TEXT, k=0)
    with pytest.raises(ValueError, match="concept head"):
        inspect(run.baseline, TEXT)


def test_inspect_command_prints_a_readable_table(run, capsys, tmp_path):
    csv = tmp_path / "rows.csv"
    assert main(["inspect", "--run", str(run.path), "--text", TEXT, "--k", "2",
                 "--csv", str(csv)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["pos", "token", "next", "logp"] and "P@2" in out[0]
    first = run.tokenizer.decode([_tokens(run)[0, 0].item()])
    assert out[2].split()[:2] == ["0", repr(first)]
    assert out[3].strip().startswith("student  #") and out[4].strip().startswith("teacher")
    assert out[-1].startswith("inspect: ") and csv.read_text().startswith("pos,token")
