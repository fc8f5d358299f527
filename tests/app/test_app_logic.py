"""The app's importable logic without Streamlit: which runs it may open, plots, highlighting,
prompt caps, metrics tables."""

from __future__ import annotations

import pandas as pd
import pytest

from app import highlight, plots
from app import training_data as td
from app.runs import find_runs, resolve_run


def _fake_run(path):
    (path / "stages").mkdir(parents=True)
    (path / "pipeline.json").write_text("{}")
    return path


def test_runs_under_the_root_are_found_and_nothing_outside_it_opens(tmp_path):
    root = tmp_path / "root"
    _fake_run(root / "a")
    _fake_run(root / "group" / "b")
    _fake_run(tmp_path / "outside")
    (root / "link").symlink_to(tmp_path / "outside")
    (root / "empty").mkdir()
    assert find_runs(root) == ["a", "group/b"]  # the symlink out of the root is not offered
    assert resolve_run(root, "group/b") == (root / "group" / "b").resolve()
    for name, message in [("../outside", "outside the root"), ("link", "outside the root"),
                          (str(tmp_path / "outside"), "relative to the root"),
                          ("empty", "is not a run directory"), ("nope", "does not exist"),
                          ("", "relative to the root")]:
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            resolve_run(root, name)


def test_metrics_become_one_curve_per_stage_and_metric_by_tokens():
    metrics = {"ntp": [{"split": "train", "step": 1, "tokens": 10, "loss": 5.0, "ntp": 5.0},
                       {"split": "val", "step": 1, "tokens": 10, "val_loss": 4.5}],
               "cocomix": [{"split": "train", "step": 1, "tokens": 10, "loss": 6.0,
                            "ntp": 5.5, "concept": 5.0, "ok": True}]}
    frame = td.metrics_frame(metrics)
    assert len(frame) == 6  # booleans and coordinates are not metrics
    sel = td.select(frame, ("ntp",))
    fig = plots.curves(sel, "t", "loss")
    ys = {tr.name: list(tr.y) for tr in fig.data}
    assert ys == {"cocomix · ntp": [5.5], "ntp · ntp": [5.0]}
    assert plots.curves(sel.iloc[:0], "t", "loss").layout.annotations[0].text == (
        "no records in this run")


def test_stage_times_and_final_table_read_the_summary():
    summary = {"stages": {"teacher": {"wall_s": 3.0, "cpu_s": 2.0, "skipped": False}},
               "ntp": {"val_loss": 4.0, "tokens": 100}, "cocomix": {"val_loss": 4.2}}
    times = td.stage_times(summary)
    assert times.wall_s.tolist() == [3.0]
    fig = plots.stage_bars(times)
    assert sorted(tr.name for tr in fig.data) == ["cpu_s", "wall_s"]
    assert td.final_table(summary).val_loss.tolist() == [4.0, 4.2]


def test_heatmap_keeps_values_and_names_concepts_on_hover():
    fig = plots.concept_heatmap(["a", "b"], [7, 3], ["sea", "star"], [[0.1, 0.2], [0.3, 0.4]])
    hm = fig.data[0]
    assert [list(r) for r in hm.z] == [[0.1, 0.2], [0.3, 0.4]]
    assert list(hm.y) == ["7: sea", "3: star"]
    assert "concept 3: star" in hm.text[1][0]


def test_lift_bar_sorts_values_and_sweep_plot_draws_steered_and_control():
    fig = plots.lift_bar({"sea": 1.2, "space": 3.0})
    assert list(fig.data[0].x) == ["space", "sea"]
    rows = pd.DataFrame([{"strength": s, "metric": "m", "condition": c, "mean": s + d,
                          "lo": s + d - 1, "hi": s + d + 1}
                         for s in (0.0, 2.0) for c, d in (("steered", 1), ("control", 0),
                                                         ("unsteered", 0))])
    fig = plots.sweep_plot(rows, "m")
    assert [tr.name for tr in fig.data] == ["steered", "control"]
    assert list(fig.data[0].y) == [1.0, 3.0] and list(fig.data[0].error_y.array) == [1, 1]


def test_highlight_escapes_html_and_scales_opacity():
    html = highlight.highlight_tokens(["<b>", "x"], [0.5, 1.0], [True, False])
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert "rgba(255,140,0,0.50)" in html and "rgba(255,140,0,1.00)" in html
    assert "border-bottom" in html.split("</span>")[0]
    assert "rgba(255,140,0,0.25)" in highlight.highlight_tokens(["a"], [0.5], top=2.0)


def test_prompts_are_checked_and_generation_is_capped():
    from tokenizers import Tokenizer, models, pre_tokenizers

    from app.config import MAX_NEW_TOKENS
    from app.steer_logic import encode_prompt, new_token_cap

    tok = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1, "<|endoftext|>": 2},
                                     unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    assert encode_prompt(tok, "a a", 64).tolist() == [[2, 0, 0]]  # after <|endoftext|>
    with pytest.raises(ValueError, match="the prompt is empty"):
        encode_prompt(tok, " \n", 64)
    with pytest.raises(ValueError, match="11 tokens, more than the 7"):
        encode_prompt(tok, "a " * 10, 8)
    with pytest.raises(ValueError, match="characters, more than"):
        encode_prompt(tok, "a" * 5000, 64)
    assert new_token_cap(1024, 10) == MAX_NEW_TOKENS and new_token_cap(64, 60) == 4


def test_the_positions_field_reads_sentence_positions_and_shows_them_back():
    from app.steer_logic import make_spec, spec_controls

    spec = make_spec("add", 3, 6.0, "new_sentences:3")
    assert (spec.edits[0].positions, spec.edits[0].span) == ("new_sentences", 3)
    assert spec_controls(spec)["steer_positions"] == "new_sentences:3"
    assert make_spec("ban", 3, 0.0, " 0, 4").edits[0].positions == (0, 4)
    assert spec_controls(make_spec("ban", 3, 0.0, "0,4"))["steer_positions"] == "0,4"
    with pytest.raises(ValueError, match="new_sentences:3"):
        make_spec("add", 3, 6.0, "later")


def test_measured_table_reads_the_committed_demo_steering():
    import json
    from pathlib import Path

    from app.steer_logic import measured_table

    path = Path(__file__).parents[2] / "benchmarks/results/steering_dense/steering.json"
    doc = json.loads(path.read_text())
    table = measured_table(doc).set_index(["arm", "metric"])
    est = doc["final"]["arms"]["cocomix"]["summary"]["sae_act"]["steered"]
    assert table.loc[("cocomix", "sae_act"), "steered"] == (
        f"{est['mean']:.3g} [{est['lo']:.3g}, {est['hi']:.3g}]")
    assert table.loc[("cocomix", "sae_act"), "clear of both"] == "yes"
    assert table.loc[("cocomix", "oracle_grammatical"), "clear of both"] == ""  # fluency
    assert set(table.index.get_level_values("arm")) == {"cocomix", "sae"}
    assert measured_table({"screen": []}).empty  # nothing passed: no final evaluation


def test_prompt_plus_new_tokens_past_the_scoring_teachers_context_is_refused_first():
    from types import SimpleNamespace

    from tokenizers import Tokenizer, models, pre_tokenizers

    from app.steer_logic import encode_for_scoring

    tok = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1, "<|endoftext|>": 2},
                                     unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    student = SimpleNamespace(cfg=SimpleNamespace(n_ctx=512), tokenizer=tok)
    run = SimpleNamespace(teacher=SimpleNamespace(cfg=SimpleNamespace(n_ctx=32)))
    # the prompt is <|endoftext|> a a: 3 tokens
    assert encode_for_scoring(run, student, "a a", 29).shape == (1, 3)
    with pytest.raises(ValueError, match=r"\(3 tokens\) plus 30 new tokens exceed the 32-token "
                                         r"context .*fix: at most 29 new tokens"):
        encode_for_scoring(run, student, "a a", 30)
