"""The world corpus source (training/corpus/world): determinism, document structure, and
per-token ground truth aligned with the BPE tokens through `prepare`."""

import numpy as np
import pytest

from cocomix_lens.data import TokenShards
from cocomix_lens.data.truth import GroundTruth
from cocomix_lens.world import GENDER_OF, TOPIC_NAMES, VOCABULARY, parse_text
from training.cli import main
from training.corpus import open_corpus
from training.corpus.world.generator import generate


def test_same_seed_same_documents_other_seed_other_documents():
    a = [d.text for d in open_corpus("world", max_docs=20, seed=3).documents()]
    b = [d.text for d in open_corpus("world", max_docs=20, seed=3).documents()]
    c = [d.text for d in open_corpus("world", max_docs=20, seed=4).documents()]
    assert a == b
    assert sum(x == y for x, y in zip(a, c)) == 0
    # A document depends on (seed, index) only: a smaller corpus is a prefix.
    assert [d.text for d in open_corpus("world", max_docs=5, seed=3).documents()] == a[:5]


def test_world_has_topics_characters_and_a_small_topic_specific_vocabulary():
    assert len(TOPIC_NAMES) >= 12 and len(GENDER_OF) == 20
    assert 500 <= len(VOCABULARY) <= 700
    kinds = {generate(0, i)[2]["kind"] for i in range(30)}
    assert kinds == {"story", "report", "dialogue"}


def test_pronoun_follows_its_named_antecedent():
    # Every pronoun of the first 200 documents has a named antecedent of its gender before it.
    for i in range(200):
        text, spans, _ = generate(0, i)
        names = {}
        for a, b, var, value in sorted(spans):
            if var == "character":
                word = text[a:b]
                if word in GENDER_OF:
                    if text[b:b + 1] != ":":  # a speaker tag is no antecedent
                        names[GENDER_OF[word]] = word
                elif word in ("he", "she", "his", "her", "He", "She", "His", "Her"):
                    g = "f" if word.lower() in ("she", "her") else "m"
                    assert names.get(g) == value, (text, a, word)


def test_topic_switch_is_marked_and_questions_are_answered():
    switches = answers = 0
    for i in range(300):
        text, spans, _ = generate(0, i)
        parses = parse_text(text)
        topics = [p.context_topic for p in parses]
        for j in range(1, len(parses)):
            if topics[j] != topics[j - 1]:
                switches += 1
                assert parses[j].act == "marker" and text[parses[j].start - 1] == "\n"
            if parses[j - 1].act == "question":
                answers += 1
                assert parses[j].act == "answer"
    assert switches > 50 and answers > 100


def test_max_docs_must_be_positive():
    with pytest.raises(ValueError, match="--max-docs"):
        open_corpus("world", max_docs=0)


def test_ground_truth_aligned_with_tokens_after_bpe(tmp_path, capsys):
    out = tmp_path / "w"
    assert main(["prepare", "--corpus", "world", "--max-docs", "300", "--vocab-size", "4096",
                 "--val-fraction", "0.1", "--out", str(out)]) == 0
    shards, truth = TokenShards.open(out), GroundTruth.open(out)
    for split in ("train", "val"):
        ids = np.asarray(shards.split(split))
        arr = truth.array(split)
        assert arr.shape == (len(ids), len(truth.columns))
        assert (arr[ids == shards.eos_id] == -1).all()
        docs = shards.documents(split)
        n_spans = 0
        for d in docs:
            text, spans, _ = generate(0, int(d["id"].split(":")[1]))
            assert shards.decode(ids[d["start"]:d["end"]]) == text
            assert "spans" not in d["meta"]
            n_spans += sum(v == "character" for _, _, v, _ in spans)
        # Each labelled run of tokens decodes to the word its span covers.
        col, values = truth.column(split, "character"), truth.values("character")
        runs = np.flatnonzero(np.diff(np.r_[-1, col]) != 0)
        words = []
        for a, b in zip(runs, np.r_[runs[1:], len(col)]):
            if col[a] >= 0:
                words.append((shards.decode(ids[a:b]).strip().rstrip(":"), values[col[a]]))
        assert len(words) == n_spans
        for word, name in words:
            assert word == name or word.lower() in ("he", "she", "his", "her")
        q, qv = truth.column(split, "quantity"), truth.values("quantity")
        nums = {shards.decode([ids[i]]).strip(): qv[q[i]] for i in np.flatnonzero(q >= 0)}
        assert nums and all(dict(two="2", three="3", four="4", five="5", six="6", seven="7",
                                 eight="8", nine="9", ten="10", eleven="11",
                                 twelve="12")[w] == v for w, v in nums.items())
