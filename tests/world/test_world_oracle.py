"""The world oracle (cocomix_lens/world/oracle.py): round trip on generated documents, and
the agreement rules that make a sentence ungrammatical."""

from cocomix_lens.world import TEMPLATES, parse_text, to_spans
from cocomix_lens.world.grammar import realise
from training.corpus.world.generator import generate


def test_oracle_round_trip_on_generated_documents():
    # Held-out seed: every sentence parses and the oracle's reading equals the written truth.
    n_sent = 0
    for i in range(300):
        text, spans, latents = generate(11, i)
        parses = parse_text(text)
        n_sent += len(parses)
        assert all(p.grammatical and p.complete for p in parses), text
        assert sorted(map(tuple, to_spans(text, parses))) == sorted(map(tuple, spans)), text
    assert n_sent > 2500


def test_every_template_parses_in_every_tense():
    fill = {"S": "Anna", "S2": "Tom", "V": "bake", "V2": "stir", "VB": "bake", "N": "pie",
            "NS": "cakes", "ADJ": "sweet", "ROLE": "baker", "NUM": "seven", "TOWN": "Elmbury",
            "SENT": "glad", "POSS": "her", "PRON": "she"}
    for t in TEMPLATES.values():
        for tense in ("past", "present", "future"):
            words = [w for w, _ in realise(t, tense, fill)]
            text = " ".join(words).replace(" .", ".").replace(" ,", ",").replace(" ?", "?")
            (p,) = parse_text("Anna was a baker from Elmbury. " + text)[1:]
            assert p.grammatical and p.template == t.name, text
            assert p.topic in (None, "cooking")


def test_pronoun_resolves_to_last_named_character_of_its_gender():
    text = "Anna was a baker from Elmbury. Tom was a chef from Upton. She baked the pie.\n" \
           "Tom: He stirred his soup."
    parses = parse_text(text)
    assert [m.character for m in parses[2].mentions] == ["Anna"]
    # A speaker tag names a character but is no antecedent: "He" is Tom from sentence 2.
    assert [(m.character, m.kind) for m in parses[3].mentions] == [
        ("Tom", "speaker"), ("Tom", "pronoun"), ("Tom", "possessive")]
    assert parse_text("She baked the pie.")[0].mentions[0].character is None


def test_agreement_failures_are_ungrammatical():
    def ok(s):
        return parse_text(s)[0].grammatical

    assert ok("Anna baked the pie.") and not ok("Anna baked the comet.")  # topic mismatch
    assert ok("Tom sold his coin.") and not ok("Tom sold her coin.")  # possessive gender
    assert ok("Then Anna baked a sweet pie.") and not ok("Then Anna baked an sweet pie.")
    assert not ok("Anna bakes the pie yesterday.") and not ok("Anna baked pie the.")
    assert parse_text("Anna baked the comet.")[0].topic in ("cooking", "space")


def test_topic_persists_until_a_marked_switch_and_answers_follow_questions():
    text = ("Anna was a baker from Elmbury. Did she bake the pie? Yes, she did.\n"
            "Later, the talk turned to comets. It was a glad day for comets.")
    parses = parse_text(text)
    assert [p.act for p in parses] == ["intro", "question", "answer", "marker", "statement"]
    assert [p.context_topic for p in parses] == ["cooking"] * 3 + ["space"] * 2
    assert [p.topic for p in parses][2] is None
    assert parses[4].sentiment == "positive" and parses[1].tense == "past"


def test_fragments_and_unknown_words():
    (p,) = parse_text("Anna baked the pie")
    assert not p.complete and not p.grammatical
    (p,) = parse_text("Anna baked the pizza.")
    assert p.complete and not p.grammatical and p.topic == "cooking"
