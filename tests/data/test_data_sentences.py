"""The sentence-end rule (cocomix_lens/data/sentences.py): punctuation, newlines and
end-of-text end a sentence, in every corpus."""

from cocomix_lens.data.sentences import sentence_ends


def test_sentence_ends_mark_punctuation_newlines_and_end_of_text():
    ends = sentence_ends(["She", " sold", ".", " Did", "?\n", "Anna", ":", "<eos>"], eos_id=7)
    assert ends.tolist() == [False, False, True, False, True, False, False, True]


def test_the_world_splits_sentences_by_the_same_rule():
    from cocomix_lens.world import sentence_ends as world_sentence_ends

    assert world_sentence_ends is sentence_ends
