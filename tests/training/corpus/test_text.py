"""The local-files corpus source (training.corpus.text)."""

import json

import pytest

from training.corpus import open_corpus


def _tree(tmp_path):
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("first story.\n\nsecond story.\n", encoding="utf-8")
    rows = [{"text": "jsonl doc one", "topic": "cats", "score": 3, "tags": ["x"]},
            {"text": "jsonl doc two é", "topic": "dogs"}]
    (root / "sub" / "b.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n",
                                          encoding="utf-8")
    (root / "ignored.md").write_text("not a corpus file")
    return root


def test_directory_yields_txt_and_jsonl_documents_with_metadata(tmp_path):
    docs = list(open_corpus("text", path=str(_tree(tmp_path))).documents())
    assert [d.id for d in docs] == ["corpus/a.txt:0", "corpus/sub/b.jsonl:1",
                                    "corpus/sub/b.jsonl:2"]
    assert docs[0].text == "first story.\n\nsecond story.\n"
    assert docs[1].text == "jsonl doc one"
    # scalar fields are kept, lists dropped; file and line locate the source
    assert docs[1].meta == {"topic": "cats", "score": 3, "file": "corpus/sub/b.jsonl",
                            "line": 1}
    assert docs[2].meta["topic"] == "dogs"


def test_separator_splits_txt_and_max_docs_limits(tmp_path):
    root = _tree(tmp_path)
    docs = list(open_corpus("text", path=[root / "a.txt"], separator="\n\n").documents())
    assert [d.text for d in docs] == ["first story.", "second story.\n"]
    assert [d.meta["part"] for d in docs] == [0, 1]
    assert len(list(open_corpus("text", path=str(root), max_docs=2).documents())) == 2


def test_fingerprint_follows_file_content(tmp_path):
    root = _tree(tmp_path)
    before = open_corpus("text", path=str(root)).fingerprint()
    assert open_corpus("text", path=str(root)).fingerprint() == before
    (root / "a.txt").write_text("changed")
    assert open_corpus("text", path=str(root)).fingerprint() != before


def test_bad_inputs_name_the_problem_and_fix(tmp_path):
    root = _tree(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist; fix"):
        open_corpus("text", path=str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="neither .txt nor .jsonl"):
        open_corpus("text", path=str(root / "ignored.md"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .txt or .jsonl files"):
        open_corpus("text", path=str(tmp_path / "empty"))
    src = open_corpus("text", path=str(root / "sub"), text_field="body")
    with pytest.raises(ValueError, match=r"b.jsonl:1 .*--text-field"):
        list(src.documents())
