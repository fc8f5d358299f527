"""The Streamlit app, page by page, through streamlit.testing.v1.AppTest on a micro run."""

from __future__ import annotations

import pytest
from helpers_app import (
    APP_SPECS,
    app_env,
    assert_clean,
    build_root,
    errors,
    find_second_edit,
    find_steerable,
    library_text,
    measured_doc,
    open_app,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory, micro_run):
    root = build_root(tmp_path_factory.mktemp("app"), micro_run[1])
    with app_env(root):
        yield root


@pytest.fixture(scope="module")
def steerable(root):
    return find_steerable(root / "run")


def chart_count(at) -> int:
    return len(at.get("plotly_chart"))


# ---- training ---------------------------------------------------------------------------------
def test_training_page_draws_every_chart_and_the_sae_quality_of_the_run(root):
    import json

    at = open_app(page="training")
    assert_clean(at)
    assert chart_count(at) == 5 + 2  # and the study's curves and savings bar
    summary = json.loads((root / "run" / "summary.json").read_text())
    shown = {m.label: m.value for m in at.metric}
    assert shown["variance explained"] == f"{summary['sae']['variance_explained']:.3g}"
    table = at.dataframe[0].value
    assert list(table.model) == ["teacher", "ntp", "cocomix"]
    assert table.val_loss.tolist() == pytest.approx(
        [summary[m]["val_loss"] for m in ("teacher", "ntp", "cocomix")])


def _chart(at, title_start: str) -> dict:
    import json

    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return next(s for s in specs if s["layout"]["title"]["text"].startswith(title_start))


def _frame(at, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_training_page_shows_the_study_with_study_jsons_numbers(root):
    import json

    import numpy as np

    doc = json.loads((root / "run" / "study" / "study.json").read_text())
    at = open_app(page="training")
    assert_clean(at)
    verdicts = at.table[0].value.reset_index()
    assert verdicts.claim.tolist() == [f"({c['id']}) {c['title']}" for c in doc["claims"]]
    assert verdicts.verdict.tolist() == [c["verdict"] for c in doc["claims"]]
    assert verdicts.test.tolist() == [c["test"] for c in doc["claims"]]
    gap = doc["claims"][0]["comparisons"][0]
    assert verdicts.effect[0].startswith(f"cocomix vs ntp: {gap['mean']:+.4f} ± {gap['std']:.4f}")
    # curves: per arm the mean over seeds by tokens, the band mean ± sample std
    traces = {t["name"]: t for t in _chart(at, "Validation loss by training tokens")["data"]}
    for arm, seeds in doc["curves"].items():
        losses = np.array([c["val_loss"] for c in seeds.values()])
        mean, std = losses.mean(0), losses.std(0, ddof=1)
        line = traces[f"{arm} (n={len(seeds)})"]
        assert line["x"] == seeds["0"]["tokens"] and line["y"] == pytest.approx(mean)
        assert traces[f"{arm} band"]["y"] == pytest.approx([*(mean + std), *(mean - std)[::-1]])
    # savings bar: claims whose share saved is a number (None where no seed reached the loss)
    saved = [c["numbers"]["token_share_saved"] for c in doc["claims"]
             if (c["numbers"].get("token_share_saved") or {}).get("mean") is not None]
    bar = _chart(at, "Tokens saved")["data"][0]
    assert bar["y"] == pytest.approx([100 * s["mean"] for s in saved]) and saved
    ablations = _frame(at, "Δ vs cocomix")
    assert ablations.arm.tolist() == [r["arm"] for r in doc["ablations"]]
    assert ablations["val loss"].tolist() == pytest.approx([r["mean"] for r in doc["ablations"]])
    assert ablations["Δ vs cocomix"].tolist() == pytest.approx(
        [r["delta"] for r in doc["ablations"]])


def test_training_page_without_a_study_says_how_to_make_one_and_a_damaged_one_errs(root):
    at = open_app(run="no_student", page="training")
    assert_clean(at)
    assert chart_count(at) == 5
    assert any(f"cocomix-lens study --run {root / 'no_student'} --seeds 3" in i.value
               for i in at.info), [i.value for i in at.info]
    bad = root / "bad_catalogue" / "study" / "study.json"
    bad.parent.mkdir(exist_ok=True)
    bad.write_text("{ not json")
    at = open_app(run="bad_catalogue", page="training")
    assert any("study.json is not valid JSON" in e and "report_only=True" in e
               for e in errors(at))
    assert chart_count(at) == 5 and not at.exception  # the rest of the page still draws


# ---- steer ------------------------------------------------------------------------------------
def _measured_doc(strength: float) -> dict:
    """A `steer-eval --densest` result for concept 5 (rank 2, after a screened concept that
    did not pass) whose chosen CoCoMix edit is add `strength` std."""
    return measured_doc(5, strength, rank=2, screen=[{"concept": 2, "clear": False},
                                                     {"concept": 5, "clear": True}])


def test_steer_page_shows_the_runs_measured_steering_and_uses_its_edit(root):
    import json
    import shutil

    out = root / "run" / "steering"
    out.mkdir()
    (out / "steering.json").write_text(json.dumps(_measured_doc(4.0)))
    try:
        at = open_app(page="steer")
        assert_clean(at)
        text = " ".join(m.value for m in at.markdown)
        assert "**1 steer**" in text and "Concept **5**" in text and "rank 2" in text
        table = next(d.value for d in at.dataframe if "clear of both" in d.value.columns)
        assert table.loc[0, "metric"] == "sae_act" and table.loc[0, "clear of both"] == "yes"
        at.button(key="steer_use_measured").click().run()
        assert_clean(at)
        assert (at.session_state["steer_concept"], at.session_state["steer_op"],
                at.session_state["steer_strength"]) == (5, "add", 4.0)
    finally:
        shutil.rmtree(out)


@pytest.mark.parametrize("strength, shown, warned", [(12.0, 12.0, False), (40.0, 30.0, True)])
def test_a_measured_edit_beyond_ten_std_reaches_the_slider_and_one_beyond_it_is_said(
        root, strength, shown, warned):
    """The demo's screen chooses add 12 std: "Use this edit" puts 12 on the slider (its range
    was +-10, which silently made it 10); a strength beyond the slider's range is used at the
    range's end with a warning that says so."""
    import json
    import shutil

    import streamlit as st

    out = root / "run" / "steering"
    out.mkdir()
    (out / "steering.json").write_text(json.dumps(_measured_doc(strength)))
    st.cache_resource.clear()  # the app keeps one Run per process, its steering read once
    try:
        at = open_app(page="steer")
        at.button(key="steer_use_measured").click().run()
        assert_clean(at)
        assert at.slider(key="steer_strength").value == shown
        said = [w.value for w in at.warning if "outside add's slider range" in w.value]
        assert bool(said) == warned, said
    finally:
        shutil.rmtree(out)
        st.cache_resource.clear()


def _steer(at, concept: int, strength: float, op: str = "scale"):
    at.text_area(key="steer_prompt").set_value("The")
    at.selectbox(key="steer_op").set_value(op)
    at.text_input(key="steer_search").set_value(str(concept))
    at.run()
    at.selectbox(key="steer_concept").set_value(concept)
    at.slider(key="steer_strength").set_value(strength)
    at.button(key="steer_go").click()
    return at.run()


def _texts(at) -> dict[str, str]:
    samples = at.session_state["steer_result"]["samples"]
    return {name: s["text"] for name, s in samples.items()}


def test_steer_shows_default_and_steered_side_by_side_and_strength_changes_the_text(steerable):
    concept, strength = steerable
    at = _steer(open_app(page="steer"), concept, strength)
    assert_clean(at)
    texts = _texts(at)
    assert texts["default"] != ""
    assert texts["default"] and texts["steered"] != texts["default"]
    scores = at.dataframe[-1].value  # the result's scores, below the steer-bench leaderboard
    assert list(scores.index) == ["default", "steered"]
    assert set(scores.columns) >= {"student_topk", "student_prob", "ppl_ntp", "distinct_2"}
    assert scores.loc["default", "length"] == len(at.session_state["steer_result"]["samples"]
                                                    ["default"]["trace"])
    # scale ×1 is no edit: the steered sample is the default one again
    at = _steer(at, concept, 1.0)
    assert_clean(at)
    again = _texts(at)
    assert again["steered"] == again["default"] == texts["default"]


def test_steer_sweep_plots_one_point_per_strength_with_the_librarys_figures(root, steerable):
    from app.steer_logic import Sampling, default_strengths, sweep_settings
    from cocomix_lens import Run
    from cocomix_lens.steering.evaluate import sweep

    concept, _ = steerable
    at = open_app(page="steer", concept=concept)
    assert at.selectbox(key="steer_concept").value == concept
    at.button(key="steer_sweep_go").click()
    at.run()
    assert_clean(at)
    _, op, rows, table = at.session_state["steer_sweep"]
    # the page's figures are the library's sweep at the page's settings, metric for metric
    sampling, evaluation = sweep_settings(Sampling())
    lib = sweep(Run.open(root / "run"), concept, op, default_strengths(op), ["The"], sampling,
                evaluation)
    assert table == lib.table() and at.code[0].value == table
    assert {m.name for m in lib.results[0].metrics} == set(rows.metric)
    assert sorted(rows.strength.unique()) == default_strengths(op)
    assert set(rows.condition) == {"steered", "control", "unsteered"}
    assert (rows.lo <= rows["mean"] + 1e-9).all() and (rows["mean"] <= rows.hi + 1e-9).all()
    assert chart_count(at) == 1
    before = at.get("plotly_chart")[0].proto.spec
    at.selectbox(key="steer_sweep_metric").set_value("ppl_ntp")
    at.run()
    assert at.get("plotly_chart")[0].proto.spec != before


def test_steer_spec_json_round_trips_through_the_page_controls():
    from app.steer_logic import make_spec, spec_controls
    from cocomix_lens.steering import SteeringSpec

    spec = make_spec("add", 7, -2.5, [0, 3], std=0.5)
    again = SteeringSpec.from_json(spec.to_json())
    assert again == spec
    assert spec_controls(again) == {"steer_concept": 7, "steer_op": "add",
                                    "steer_strength": -2.5, "steer_positions": "0,3"}
    assert spec_controls(make_spec("set", 4, 3.0))["steer_strength"] == 3.0


def test_a_loaded_spec_keeps_every_edit_in_its_place_around_the_controls_edit():
    from app.steer_logic import describe_edit, loaded_edits, make_spec, spec_controls
    from cocomix_lens.steering import Edit, SteeringSpec

    spec = SteeringSpec().set([3, 9], [4.0, 2.0]).scale(5, 2.0).ban(7, positions=[1, 2])
    loaded = loaded_edits(spec)  # a set of two concepts has no controls: the scale is shown
    assert loaded == (spec.edits[0], None, spec.edits[2])
    assert spec_controls(spec)["steer_concept"] == 5
    assert make_spec("scale", 5, 2.0, loaded=loaded) == spec
    assert make_spec("add", 6, -1.0, loaded=loaded).edits == (
        spec.edits[0], Edit("add", 6, -1.0), spec.edits[2])
    assert describe_edit(spec.edits[2]) == "ban concept 7 from the top-k at positions 1,2"
    with pytest.raises(ValueError, match="none of the spec's edits fits"):
        spec_controls(SteeringSpec().add_vector(None, 1.0, vector=[0.0, 1.0]))


def test_a_loaded_two_edit_spec_generates_what_the_library_does_with_both(root, steerable):
    from cocomix_lens import Run
    from cocomix_lens.steering import Edit, SteeringSpec

    concept, strength = steerable
    first = Edit("scale", concept, strength)
    spec = SteeringSpec((first, find_second_edit(root / "run", first)))
    model = Run.open(root / "run").student
    both, alone = library_text(model, spec), library_text(model, SteeringSpec((first,)))
    assert both != alone
    at = open_app(page="steer")
    at.file_uploader(key="steer_upload").set_value(
        ("spec.json", spec.to_json().encode(), "application/json"))
    at.run()
    assert_clean(at)
    assert not at.warning  # no "applies only the first edit" any more
    assert "1 more edit(s) from the loaded spec" in " ".join(m.value for m in at.markdown)
    assert at.selectbox(key="steer_concept").value == concept
    at.button(key="steer_go").click()
    at.run()
    assert_clean(at)
    result = at.session_state["steer_result"]
    assert result["spec"] == spec
    assert result["samples"]["steered"]["text"] == both
    # dropping the loaded edits leaves the controls' edit alone
    at.button(key="steer_drop_loaded").click()
    at.run()
    at.button(key="steer_go").click()
    at.run()
    assert at.session_state["steer_result"]["spec"] == SteeringSpec((first,))
    assert at.session_state["steer_result"]["samples"]["steered"]["text"] == alone


def test_a_loaded_add_edit_keeps_its_std_and_a_spec_the_controls_cannot_show_is_refused(
        root, steerable):
    from cocomix_lens import Run
    from cocomix_lens.steering import SteeringSpec

    concept, _ = steerable
    others = [c for c in range(3) if c != concept][:2]
    spec = SteeringSpec().add(concept, 3.0, std=0.5).set(others, [1.0, 2.0])
    at = open_app(page="steer")
    at.file_uploader(key="steer_upload").set_value(
        ("spec.json", spec.to_json().encode(), "application/json"))
    at.run()
    at.button(key="steer_go").click()
    at.run()
    assert_clean(at)
    assert at.session_state["steer_result"]["spec"] == spec  # std 0.5, not the catalogue's
    d_model = Run.open(root / "run").student.cfg.d_model
    vector_only = SteeringSpec().add_vector(None, 1.0, vector=[0.0] * d_model)
    at.file_uploader(key="steer_upload").set_value(
        ("v.json", vector_only.to_json().encode(), "application/json"))
    at.run()
    assert any("none of the spec's edits fits" in w.value for w in at.warning)


@pytest.mark.parametrize("blob, message", [(b, m) for _, b, m in APP_SPECS],
                         ids=[name for name, _, _ in APP_SPECS])
def test_a_malformed_spec_upload_is_one_warning_never_an_exception(root, blob, message):
    at = open_app(page="steer")
    at.file_uploader(key="steer_upload").set_value(("bad.json", blob, "application/json"))
    at.run()
    assert not at.exception
    notes = [w.value for w in at.warning]
    assert len(notes) == 1 and message in notes[0] and "\n" not in notes[0], notes
    assert "bad.json" in notes[0] or "concept id" in notes[0] or "must be" in notes[0]


@pytest.mark.parametrize("prompt, message", [("   ", "the prompt is empty"),
                                             ("word " * 300, "tokens, more than the")])
def test_steer_refuses_an_empty_or_overlong_prompt(prompt, message):
    at = open_app(page="steer")
    at.text_area(key="steer_prompt").set_value(prompt)
    at.button(key="steer_go").click()
    at.run()
    assert not at.exception
    assert any(message in e for e in errors(at)), errors(at)


# ---- concepts ---------------------------------------------------------------------------------
def test_concept_table_search_filters_and_sort_orders(root):
    at = open_app(page="concepts")
    assert_clean(at)
    full = at.dataframe[0].value
    dens = full["prediction density"].tolist()
    assert dens == sorted(dens, reverse=True)
    at.selectbox(key="concepts_sort").set_value("concept id")
    at.run()
    assert at.dataframe[0].value.index.tolist() == sorted(full.index)
    at.text_input(key="concepts_query").set_value("orbit")
    at.run()
    assert_clean(at)
    found = at.dataframe[0].value
    assert 0 < len(found) < len(full)


def test_concept_page_shows_its_record_and_steer_button_opens_steer(root):
    from cocomix_lens.catalogue import Catalogue

    cat = Catalogue.open(root / "run" / "catalogue")
    c = int(cat.concepts.prediction_density.idxmax())
    at = open_app(page="concepts", concept=c)
    assert_clean(at)
    assert at.subheader[0].value.startswith(f"Concept {c}: {cat[c].name}")
    shown = {m.label: m.value for m in at.metric}
    assert shown["prediction density"] == f"{cat[c].prediction_density:.2%}"
    # lift, logit distribution; the card's 4 logit-effect bars and 3 histograms
    assert chart_count(at) == 2 + 4 + 3
    text = " ".join(m.value for m in at.markdown)
    assert cat.concepts.loc[c, "explanation"] in text and "detection AUROC" in text
    at.button(key="concept_steer").click()
    at.run()
    assert_clean(at)
    assert at.query_params["page"] == "steer"
    assert at.selectbox(key="steer_concept").value == c


# ---- run picker, URL and errors ---------------------------------------------------------------
def test_run_picker_lists_runs_under_the_root_and_the_url_follows():
    at = open_app(page="training")
    assert at.selectbox(key="run").options == ["bad_catalogue", "no_student", "run"]
    at.sidebar.radio(key="page").set_value("inspect")
    at.run()
    assert at.query_params["page"] == "inspect" and at.query_params["run"] == "run"


@pytest.mark.parametrize("query, message", [
    ({"run": "../.."}, "outside the root"),
    ({"run": "/etc"}, "relative to the root"),
    ({"run": "missing"}, "does not exist"),
    ({"run": "no_student", "page": "steer"}, "has no student"),
    ({"run": "bad_catalogue", "page": "concepts"}, "rebuild it with"),
    ({"page": "concepts", "concept": "99999"}, "pick a concept in the table"),
    ({"page": "concepts", "concept": "abc"}, "not a concept id"),
    ({"page": "nowhere"}, "page 'nowhere' in the URL is unknown"),
])
def test_bad_urls_and_broken_runs_show_one_error_naming_the_fix(query, message):
    at = open_app(**query)
    assert not at.exception
    shown = errors(at)
    assert any(message in e for e in shown), shown
    assert not any("Traceback" in e or "bug in cocomix-lens" in e for e in shown)


@pytest.mark.parametrize("op", ["add", "force", "ban", "set", "vector"])
def test_every_steering_operation_generates_from_the_page(root, steerable, op):
    from cocomix_lens import Run

    concept, _ = steerable
    at = open_app(page="steer", concept=concept)
    at.selectbox(key="steer_op").set_value(op)
    at.run()
    has_slider = any(s.key == "steer_strength" for s in at.slider)
    assert has_slider == (op not in ("force", "ban"))
    at.button(key="steer_go").click()
    at.run()
    assert_clean(at)
    edit = at.session_state["steer_result"]["spec"].edits[0]
    assert edit.op == op
    if op == "add":  # strength counts the catalogue's logit stds of that concept
        stds = Run.open(root / "run").catalogue.concepts["logit_std"]
        assert edit.std == pytest.approx(float(stds.loc[concept]))


@pytest.mark.parametrize("blob", [b"{garbage", b"", b"[1, 2]", b"\xff\xfe"])
def test_a_damaged_summary_is_one_error_naming_the_file_never_an_exception(root, blob):
    import shutil

    broken = root / f"broken{len(blob)}"
    shutil.copytree(root / "run", broken, ignore=shutil.ignore_patterns("*.safetensors"))
    (broken / "summary.json").write_bytes(blob)
    at = open_app(page="training", run=broken.name)
    assert not at.exception
    assert len(errors(at)) == 1 and "summary.json" in errors(at)[0], errors(at)
    assert "fix:" in errors(at)[0] and "\n" not in errors(at)[0]
    shutil.rmtree(broken)


def test_steer_toward_a_concept_by_name_loads_the_recommended_edit(root):
    from cocomix_lens import Run
    from cocomix_lens.catalogue.search import search
    from cocomix_lens.steering.toward import RECOMMENDED

    at = open_app(page="steer")
    assert_clean(at)
    at.text_input(key="steer_toward_name").input("ship").run()
    at.button(key="steer_toward_go").click().run()
    assert_clean(at)
    hit = int(search(Run.open(root / "run").catalogue, "ship", limit=1).index[0])
    assert at.session_state["steer_concept"] == hit
    assert at.session_state["steer_op"] == RECOMMENDED.op
    assert "catalogue's best match for 'ship'" in at.session_state["steer_toward_how"]


def test_steer_toward_a_topic_keeping_grammar_loads_the_measured_edit(tmp_path_factory,
                                                                       micro_world_run):
    from cocomix_lens import Run
    from cocomix_lens.steering.toward import KEEP_GRAMMAR_SOURCE, toward

    root = build_root(tmp_path_factory.mktemp("app_world"), micro_world_run[1])
    with app_env(root):
        at = open_app(page="steer")
        assert_clean(at)
        at.selectbox(key="steer_toward_topic").select("sea").run()
        at.checkbox(key="steer_toward_keep").check().run()
        assert at.button(key="steer_toward_go").label == "Use the grammar-keeping edit toward 'sea'"
        at.button(key="steer_toward_go").click().run()
        assert_clean(at)
    spec, how = toward(Run.open(root / "run"), "sea", keep_grammar=True)
    first = spec.edits[0]
    assert at.session_state["steer_op"] == first.op
    assert at.session_state["steer_concept"] == first.concept
    assert at.session_state["steer_toward_how"] == how and KEEP_GRAMMAR_SOURCE in how


def test_one_spec_gives_the_same_text_through_library_cli_and_app(root, steerable, tmp_path,
                                                                   capsys):
    """A spec file with an add edit in catalogue stds (resolved by each path alike) and a
    scale edit: `model.generate`, `cocomix-lens generate --steer` and the Steer page give the
    same continuation of the same prompt with the same sampling and seed."""
    from cocomix_lens import Run
    from cocomix_lens.sampling import Sampling
    from cocomix_lens.steering import SteeringSpec
    from training.cli import main

    concept, strength = steerable
    spec = SteeringSpec().scale(concept, strength).add(concept, 2.0)
    path = spec.save(tmp_path / "spec.json")
    run = Run.open(root / "run")
    library = run.student.generate("The", **Sampling().kwargs(),
                                   steering=SteeringSpec.load(path).resolve(run))
    assert library != run.student.generate("The", **Sampling().kwargs())  # the spec acts
    assert main(["generate", "--run", str(root / "run"), "--prompt", "The", "--steer",
                 str(path)]) == 0
    assert capsys.readouterr().out == library + "\n"
    at = open_app(page="steer")
    at.file_uploader(key="steer_upload").set_value(("spec.json", path.read_bytes(),
                                                    "application/json"))
    at.run()
    at.text_area(key="steer_prompt").set_value("The")
    at.button(key="steer_go").click()
    at.run()
    assert_clean(at)
    result = at.session_state["steer_result"]
    assert result["spec"] == SteeringSpec.load(path).resolve(run)  # resolved stds recorded
    assert "The" + result["samples"]["steered"]["text"] == library
