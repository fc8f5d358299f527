"""The Hugging Face corpus source (training.corpus.hf), offline through local datasets."""

import json

import pytest

datasets = pytest.importorskip("datasets")

from training.corpus import open_corpus  # noqa: E402

ROWS = {"text": ["once upon a time", "a cat sat", "the end"], "label": [0, 1, 0],
        "extra": [[1], [2], [3]]}


def test_saved_dataset_loads_through_hf_source(tmp_path):
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "ds"))
    docs = list(open_corpus("hf", name=str(tmp_path / "ds")).documents())
    assert [d.text for d in docs] == ROWS["text"]
    assert [d.id for d in docs] == ["train:0", "train:1", "train:2"]
    assert docs[1].meta == {"label": 1, "index": 1}


def test_saved_dataset_dict_picks_the_split(tmp_path):
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(ROWS),
                               "validation": datasets.Dataset.from_dict({"text": ["v"]})})
    dd.save_to_disk(str(tmp_path / "dd"))
    docs = list(open_corpus("hf", name=str(tmp_path / "dd"), split="validation").documents())
    assert [d.text for d in docs] == ["v"]
    with pytest.raises(ValueError, match="has splits.*fix: pass --split"):
        list(open_corpus("hf", name=str(tmp_path / "dd"), split="test").documents())


def test_local_json_files_stream_with_max_docs_and_text_field(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"story": f"story {i}", "id": i}) + "\n"
                            for i in range(5)))
    src = open_corpus("hf", name="json", data_files=str(path), text_field="story", max_docs=3)
    docs = list(src.documents())
    assert [d.text for d in docs] == ["story 0", "story 1", "story 2"]
    assert docs[2].meta == {"id": 2, "index": 2}
    fp = src.fingerprint()
    path.write_text(json.dumps({"story": "other"}) + "\n")
    assert src.fingerprint()["local_sha256"] != fp["local_sha256"]


def test_missing_text_column_is_a_clear_error(tmp_path):
    datasets.Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "ds"))
    src = open_corpus("hf", name=str(tmp_path / "ds"), text_field="body")
    with pytest.raises(ValueError, match="no string column 'body'.*--text-field"):
        list(src.documents())
