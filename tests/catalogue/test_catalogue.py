"""The concept catalogue on a micro pipeline run: every stored number against a recomputation
from the run's models, labels and shards."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from cocomix_lens.catalogue import build_catalogue, contrast, run_sources
from cocomix_lens.catalogue.metadata import categorical_keys, concentration
from cocomix_lens.concepts import ConceptExtractor, decoder_directions
from cocomix_lens.rundir import Run
from training.cli import main


@pytest.fixture(scope="module")
def run(micro_run):
    return Run.open(micro_run[1])  # the session's run (tests/conftest.py), read only


@pytest.fixture(scope="module")
def val(run):
    """Teacher SAE activations and student concept logits of every validation token, computed
    window by window without the catalogue's code: (acts [N, C], z [N, C])."""
    tokens = torch.from_numpy(run.shards.split("val").astype(np.int64))
    window = run.labels.window
    extractor = ConceptExtractor(run.teacher, run.sae, method="activation")
    acts, z = [], []
    for lo in range(0, len(tokens), window):
        x = tokens[lo:lo + window]
        if len(x) < 2:
            continue
        acts.append(extractor.scores(x)[0])
        with torch.no_grad():
            z.append(run.student(x[None], return_concept_logits=True)[1][0])
    return torch.cat(acts), torch.cat(z)


def test_pipeline_builds_the_catalogue_and_run_opens_it(run):
    cat = run.catalogue
    assert len(cat) == run.student.cfg.n_concepts == run.sae.cfg.d_sae
    assert json.loads((run.path / "stages" / "catalog.json").read_text())["result"][
        "concepts"] == len(cat)
    assert cat.meta["sources"] == run_sources(run)
    assert cat.meta["tokenizer_sha256"] == run.shards.tokenizer_sha256


def test_catalogue_rebuilt_from_scratch_equals_the_stored_one(run, tmp_path):
    fresh = build_catalogue(tmp_path / "again", teacher=run.teacher, sae=run.sae,
                            student=run.student, shards=run.shards, labels=run.labels,
                            sources=run_sources(run))
    stored = run.catalogue
    for table in ("concepts", "contexts", "metadata", "activity"):
        pd.testing.assert_frame_equal(getattr(fresh, table), getattr(stored, table))
    drop = lambda meta: {k: v for k, v in meta.items() if k != "build_s"}  # wall time differs
    assert drop(fresh.meta) == drop(stored.meta)


def test_densities_and_logit_statistics_equal_a_direct_recomputation(run, val):
    acts, z = val
    cat = run.catalogue.concepts
    top_k = run.student.cfg.concept_top_k
    predicted = torch.zeros_like(z, dtype=torch.bool).scatter(-1, z.topk(top_k, -1).indices, True)
    np.testing.assert_allclose(cat["prediction_density"], predicted.float().mean(0).numpy())
    np.testing.assert_allclose(cat["act_density"], (acts > 0).float().mean(0).numpy())
    np.testing.assert_allclose(cat["logit_mean"], z.double().mean(0).numpy(), rtol=1e-5)
    np.testing.assert_allclose(cat["logit_std"], z.double().std(0, unbiased=False).numpy(),
                               rtol=1e-4, atol=1e-6)
    ids = np.asarray(run.labels.array("train", "ids"))
    scores = np.asarray(run.labels.array("train", "scores"))
    for c in range(len(cat)):
        labelled = ((ids == c) & (scores != 0)).any(-1)
        assert cat.loc[c, "label_count"] == labelled.sum()
        assert cat.loc[c, "label_density"] == pytest.approx(labelled.mean())
    assert cat["prediction_density"].sum() == pytest.approx(top_k)  # k concepts per token
    np.testing.assert_array_equal(cat["dead"], (cat["label_count"] == 0)
                                  & (cat["act_density"] == 0))


def _forward_logits(model, tokens: np.ndarray, window: int) -> np.ndarray:
    """[N, C] concept logits of the full windows of `tokens`, through the model's forward
    (how the app and the groundtruth stage read them before `concept_activity`)."""
    n = len(tokens) // window * window
    x = torch.from_numpy(np.asarray(tokens[:n], dtype=np.int64).reshape(-1, window))
    with torch.no_grad():
        z = [model(x[i:i + 16], return_concept_logits=True)[1] for i in range(0, len(x), 16)]
    return torch.cat(z).reshape(n, -1).float().numpy()


def test_one_pass_gives_the_catalogue_groundtruth_and_app_the_same_logits(run, val, micro_run):
    """The catalogue's scan, the groundtruth stage and the app's logit distribution read the
    student's concept logits through one pass (`concept_activity`): each gets its array, and
    that array is what the student's forward gives."""
    from app.catalogue_view import N_SAMPLE_TOKENS, _val_logits
    from cocomix_lens.catalogue.scan import concept_logits, scan_split
    from training.pipeline_groundtruth import student_active

    tokens, student = run.shards.split("val"), run.student
    n_c, k = student.cfg.n_concepts, student.cfg.concept_top_k
    window = run.labels.window  # the catalogue's windows (tail window included)
    z = concept_logits(student, tokens, window=window)
    assert np.array_equal(z, val[1].float().numpy())
    scan = scan_split(tokens, ConceptExtractor(run.teacher, run.sae, method="activation"),
                      student, window=window, n_examples=5)
    assert np.array_equal(scan.top_logit.values.numpy(), -np.sort(-z, axis=0)[:5].T)
    top = torch.from_numpy(z).topk(k, dim=-1).indices
    assert np.array_equal(scan.pred_count.numpy(), np.bincount(top.flatten(), minlength=n_c))
    seq = micro_run[0].seq_len  # the groundtruth stage's windows (full ones only)
    n = len(tokens) // seq * seq
    gt = concept_logits(student, tokens[:n], window=seq, tail=False)
    assert np.array_equal(gt, _forward_logits(student, tokens, seq))
    assert np.array_equal(student_active(student, tokens[:n], seq, k),
                          torch.from_numpy(gt).topk(k, dim=-1).indices.numpy())
    app = _val_logits(str(run.path), run.device)  # windows of n_ctx, full ones only
    sample = tokens[:N_SAMPLE_TOKENS]
    assert len(app) > 0
    assert np.array_equal(app, concept_logits(student, sample, window=student.cfg.n_ctx,
                                              tail=False))
    assert np.array_equal(app, _forward_logits(student, sample, student.cfg.n_ctx))


def test_max_activating_contexts_really_have_the_max_activation(run, val):
    cat = run.catalogue
    tokens = run.shards.split("val")
    n = cat.meta["config"]["n_examples"]
    for source, values in (("teacher", val[0]), ("student", val[1])):
        rows = cat.contexts[cat.contexts["source"] == source]
        for c, group in rows.groupby("concept"):
            got = torch.tensor(group.sort_values("rank")["value"].to_numpy(), dtype=torch.float)
            best = values[:, c].topk(n).values
            if source == "teacher":
                best = best[best > 0]  # inactive positions are no examples
            torch.testing.assert_close(got, best, rtol=1e-5, atol=1e-6)
            at = values[np.array(group["position"]), c]  # the stored positions hold them
            torch.testing.assert_close(at, torch.tensor(group["value"].to_numpy(),
                                                        dtype=torch.float), rtol=1e-5, atol=1e-6)
        some = rows.iloc[:20]
        decoded = [run.shards.decode([tokens[p]]) for p in some["position"]]
        assert decoded == some["token"].tolist()
    assert (cat.contexts.loc[cat.contexts["source"] == "teacher", "value"] > 0).all()


def test_context_windows_stay_inside_their_document(run):
    cat = run.catalogue
    docs = run.shards.documents("val")
    before = cat.meta["config"]["context_before"]
    for row in cat.contexts.iloc[::37].itertuples():
        doc = docs[int(run.shards.document_of("val", [row.position])[0])]
        assert row.document == str(doc["id"])
        lo = max(row.position - before, doc["start"])
        assert row.left == run.shards.decode(run.shards.split("val")[lo:row.position])


def test_output_tokens_are_the_directions_read_through_layer_norm_and_unembedding(run):
    cat = run.catalogue.concepts
    n = len(cat["teacher_tokens"].iloc[0])
    for name, dirs, model in (("teacher", decoder_directions(run.sae), run.teacher),
                              ("student", run.student.concept.W_comp.detach(), run.student)):
        with torch.no_grad():  # layer_norm without its bias: same ranking as the readout
            ln = torch.layer_norm(dirs, dirs.shape[-1:], model.ln_final.w, None, 1e-12)
            ids = (ln @ model.W_U).topk(n, dim=-1).indices
        words = [[run.shards.decode([i]) for i in row] for row in ids.tolist()]
        assert [list(w) for w in cat[f"{name}_tokens"]] == words


def test_feature_card_fields_equal_a_direct_computation(run, val):
    from cocomix_lens.catalogue.card import HIST_BINS, card_for_run
    from cocomix_lens.catalogue.readout import direct_logits
    from cocomix_lens.data.files import strict_json

    acts, z = val
    cat = run.catalogue
    c = int(cat.concepts.loc[~cat.concepts["dead"], "act_density"].idxmax())
    card = card_for_run(run, c)
    assert card.density["act"] == pytest.approx(float((acts[:, c] > 0).float().mean()))
    on = acts[:, c][acts[:, c] > 0].double().numpy()  # micro val < activity_tokens: all of it
    counts, edges = np.histogram(on, bins=HIST_BINS)
    assert card.activation_histogram["teacher"]["counts"] == counts.tolist()
    np.testing.assert_allclose(card.activation_histogram["teacher"]["edges"], edges, rtol=1e-5)
    for name, dirs, model in (("teacher", decoder_directions(run.sae), run.teacher),
                              ("student", run.student.concept.W_comp.detach(), run.student)):
        logits = direct_logits(dirs, model)[c]
        hist = card.logit_histogram[name]
        assert sum(hist["counts"]) == logits.numel()
        assert hist["edges"][0] == pytest.approx(float(logits.min()), abs=1e-5)
        low = logits.topk(len(card.bottom_logits[name]), largest=False)
        np.testing.assert_allclose([v for _, v in card.bottom_logits[name]], low.values,
                                   rtol=1e-5, atol=1e-5)
        unit = torch.nn.functional.normalize(dirs.float(), dim=-1)
        cos = unit @ unit[c]
        cos[c] = -2
        near = cos.topk(len(card.neighbours[name]))
        assert [n["concept"] for n in card.neighbours[name]] == near.indices.tolist()
        np.testing.assert_allclose([n["cosine"] for n in card.neighbours[name]], near.values,
                                   rtol=1e-5, atol=1e-6)
    rows = cat[c].contexts
    binned = rows[rows["source"] == "teacher_quantile"]
    assert len(binned) and set(binned["rank"]) <= set(range(4))
    torch.testing.assert_close(acts[binned["position"].to_numpy(), c],
                               torch.tensor(binned["value"].to_numpy(), dtype=torch.float),
                               rtol=1e-5, atol=1e-6)
    by_bin = binned.groupby("rank")["value"]
    assert (by_bin.max().to_numpy()[:-1] <= by_bin.min().to_numpy()[1:]).all()
    doc = card.to_json()
    assert doc["index"] == c and doc["freq_hist_data_bar_heights"] == counts.tolist()
    assert doc["explanations"][0]["description"] == cat.concepts.loc[c, "explanation"]
    assert json.loads(strict_json(doc))["index"] == c  # strict JSON


def test_search_by_example_ranks_the_concept_the_texts_are_examples_of(run):
    from cocomix_lens.catalogue.contrast import mean_concept_logits
    from cocomix_lens.catalogue.search import by_example

    cat = run.catalogue
    df = cat.concepts[~cat.concepts["dead"]]
    c = int(((df["max_logit"] - df["logit_mean"]) / df["logit_std"]).idxmax())
    # the windows the scan saw, up to the positions of its largest logits
    tokens, window = run.shards.split("val"), run.labels.window
    top = cat.contexts[(cat.contexts["source"] == "student") & (cat.contexts["concept"] == c)]
    texts = [run.shards.decode(tokens[p // window * window:p + 1]) for p in top["position"][:3]]
    found = by_example(run.student, texts, cat, limit=None)
    assert found.index[0] == c
    peak = mean_concept_logits(run.student, texts, reduce="max")[c].item()
    expect = (peak - df.loc[c, "logit_mean"]) / df.loc[c, "logit_std"]
    assert found.loc[c, "contrast"] == pytest.approx(expect, rel=1e-5)


def test_metadata_lift_matches_a_count_over_documents(run):
    cat = run.catalogue
    docs = run.shards.documents("train")
    ids = np.asarray(run.labels.array("train", "ids"))
    scores = np.asarray(run.labels.array("train", "scores"))
    n_tok = len(ids)
    topic = np.empty(n_tok, dtype=object)
    for d in docs:  # a document's tokens run from start through its EOS at end
        topic[d["start"]:d["end"] + 1] = d["meta"]["topic"]
    for row in cat.metadata.iloc[::7].itertuples():
        assert row.key == "topic"
        labelled = ((ids == row.concept) & (scores != 0)).any(-1)
        share = (labelled & (topic == row.value)).sum() / labelled.sum()
        base = (topic == row.value).mean()
        assert row.count == (labelled & (topic == row.value)).sum()
        assert row.share == pytest.approx(share)
        assert row.lift == pytest.approx(share / base)
    best = cat.metadata.groupby("concept")["lift"].max()
    assert (cat.concepts.loc[best.index, "meta_lift"] == best).all()


def test_list_valued_metadata_counts_each_value_of_a_document():
    metas = [{"tags": ["a", "b"]}, {"tags": "b"}, {"tags": ["c"]}, {}]
    docs = [{"meta": {**metas[i % 4], "title": f"t{i}"}} for i in range(12)]
    (key,) = categorical_keys(docs)  # one title per document says nothing: skipped
    assert key.name == "tags" and key.values == ["a", "b", "c"]
    rng = np.random.default_rng(0)
    doc_of = np.sort(rng.integers(0, 12, 400))
    labels = rng.integers(-1, 6, (400, 2))
    cols = concentration(labels, doc_of, 12, 6, [key], min_count=1, top=3)
    tags = [set(d["meta"].get("tags", [])) if isinstance(d["meta"].get("tags"), list)
            else {d["meta"]["tags"]} if "tags" in d["meta"] else set() for d in docs]
    for c, v, count, share, lift in zip(cols["concept"], cols["value"], cols["count"],
                                        cols["share"], cols["lift"]):
        hits = [(d, lab) for d, row in zip(doc_of, labels) for lab in row if lab == c]
        want = sum(v in tags[d] for d, _ in hits)
        base = sum(v in tags[d] for d in doc_of) / len(doc_of)
        assert count == want and share == pytest.approx(want / len(hits))
        assert lift == pytest.approx(want / len(hits) / base)
    assert len(cols["concept"]) == 6 * 3  # every concept has all three values here


def test_search_finds_a_concept_by_a_token_it_promotes(run):
    cat = run.catalogue
    for column in ("student_tokens", "teacher_tokens"):
        word_like = cat.concepts[column].map(
            lambda ts: next((t.strip() for t in ts if t.strip().isalpha()), None)).dropna()
        c, word = int(word_like.index[0]), word_like.iloc[0]
        found = cat.search(word.upper(), limit=None)  # case does not matter
        assert c in found.index and "token" in found.loc[c, "matched"].split(", ")
        live = found[~cat.concepts.loc[found.index, "dead"]]
        assert live["score"].is_monotonic_decreasing
        assert cat.concepts.loc[found.index, "dead"].is_monotonic_increasing  # live first
    assert cat.search("zzzqqq").empty
    with pytest.raises(ValueError, match="empty search query"):
        cat.search("  ")


def test_record_gives_every_field_and_a_readable_card(run):
    cat = run.catalogue
    c = int(cat.concepts["prediction_density"].idxmax())
    rec = cat[c]
    assert rec.id == c and rec.name == cat.concepts.loc[c, "name"]
    assert rec.prediction_density == cat.concepts.loc[c, "prediction_density"]
    assert (rec.contexts["concept"] == c).all() and (rec.metadata["concept"] == c).all()
    card = str(rec)
    assert card.startswith(f"concept {c}  {rec.name!r}")
    assert "top contexts by teacher SAE activation" in card and "[[" in card
    with pytest.raises(ValueError, match="concept 9999 does not exist; ids run from 0 to"):
        cat[9999]


def test_contrast_ranks_concepts_by_the_difference_of_mean_logits(run):
    a = ["The ship sailed to the harbor.", "A sailor saw a wave."]
    b = ["The planet and the moon orbit a star."]
    df = contrast(run.student, a, b, catalogue=run.catalogue)

    def mean_logits(texts):
        per = []
        for t in texts:
            x = torch.tensor([run.tokenizer.encode(t).ids])
            with torch.no_grad():
                per.append(run.student(x, return_concept_logits=True)[1][0].mean(0))
        return torch.stack(per).mean(0)

    want = (mean_logits(a) - mean_logits(b)).numpy()
    np.testing.assert_allclose(df["diff"].sort_index().to_numpy(), want, rtol=1e-5, atol=1e-6)
    assert df["diff"].is_monotonic_decreasing
    c = df.index[0]
    assert df.loc[c, "name"] == run.catalogue.concepts.loc[c, "name"]
    assert df.loc[c, "diff_std"] == pytest.approx(
        df.loc[c, "diff"] / run.catalogue.concepts.loc[c, "logit_std"])
    with pytest.raises(ValueError, match="not a single string"):
        contrast(run.student, "one text", b)


def test_stale_catalogue_is_refused_with_the_command_that_rebuilds_it(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run.path, copy)
    student = Run.open(copy).student
    with torch.no_grad():
        student.concept.W_comp.add_(1e-3)
    student.save_pretrained(copy / "cocomix" / "model")
    with pytest.raises(ValueError, match=r"stale: student changed.*the catalog step \(run="):
        Run.open(copy).catalogue
    assert main(["catalog", "--run", str(copy), "--quiet"]) == 0  # rebuilds it
    assert Run.open(copy).catalogue.meta["sources"]["student"] != run_sources(run)["student"]


def test_missing_catalogue_names_the_command(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run.path, copy, ignore=shutil.ignore_patterns("catalogue"))
    with pytest.raises(FileNotFoundError, match=r"no catalogue .*the catalog step \(run="):
        Run.open(copy).catalogue


def test_catalog_and_concepts_commands_print_readable_tables(run, capsys):
    cat = run.catalogue
    assert main(["catalog", "--run", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "is up to date" in out and f"{len(cat)} concepts" in out
    top = cat.concepts[~cat.concepts["dead"]]["prediction_density"].idxmax()
    assert main(["concepts", "--run", str(run.path), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert cat.concepts.loc[top, "name"] in out and "prediction_density" in out
    assert len(out.strip().splitlines()) == 2 + 3  # heading, column header, 3 rows
    assert main(["concepts", "--run", str(run.path), "--id", str(top)]) == 0
    assert capsys.readouterr().out.startswith(f"concept {top}  ")
    word = cat.contexts["token"].str.strip().iloc[0]
    assert main(["concepts", "--run", str(run.path), "--search", word]) == 0
    assert f"matching {word!r}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:  # a bounded flag: argparse refuses it
        main(["concepts", "--run", str(run.path), "--id", "-1"])
    assert stop.value.code == 2 and "-1 is out of range" in capsys.readouterr().err
    assert main(["concepts", "--run", str(run.path), "--id", str(len(cat))]) == 2
    assert f"concept {len(cat)} does not exist" in capsys.readouterr().err

