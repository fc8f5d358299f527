"""The app's Inspect page, through streamlit.testing.v1.AppTest on a micro run."""

from __future__ import annotations

import pytest
from helpers_app import app_env, assert_clean, build_root, errors, open_app


@pytest.fixture(scope="module", autouse=True)
def root(tmp_path_factory, micro_run):
    root = build_root(tmp_path_factory.mktemp("app"), micro_run[1])
    with app_env(root):
        yield root


def chart_count(at) -> int:
    return len(at.get("plotly_chart"))


# ---- inspect ----------------------------------------------------------------------------------
def test_inspect_follows_the_text_and_opens_a_clicked_concept():
    at = open_app(page="inspect")
    assert_clean(at)
    assert chart_count(at) == 4
    first = at.dataframe[0].value
    at.text_area(key="inspect_text").set_value("star planet orbit")
    at.run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert len(table) != len(first)
    assert "".join(table.token) == "star planet orbit"
    assert table["P@k"].dropna().between(0, 1).all()
    button = next(b for b in at.button if b.key.startswith("open_"))
    button.click()
    at.run()
    assert_clean(at)
    assert at.query_params["page"] == "concepts"
    assert at.query_params["concept"] == button.key.removeprefix("open_")


def test_inspect_opens_on_the_runs_own_validation_text(root):
    from cocomix_lens import Run

    at = open_app(page="inspect")
    assert_clean(at)
    text = at.text_area(key="inspect_text").value
    shards = Run.open(root / "run").shards
    first_val = shards.documents("val")[0]
    opening = shards.decode(shards.split("val")[first_val["start"]:first_val["end"]])
    assert text and opening.startswith(text)  # the first validation document's opening


def test_inspect_refuses_empty_text():
    at = open_app(page="inspect")
    at.text_area(key="inspect_text").set_value("")
    at.run()
    assert any("the text is empty" in e for e in errors(at))
