"""CoCoMixConfig: validation messages, JSON round trip, presets."""

import pytest

from cocomix_lens import PRESETS, CoCoMixConfig


def test_json_round_trip(tmp_path):
    cfg = CoCoMixConfig.preset("gpt2-69m")
    assert CoCoMixConfig.from_json(cfg.to_json()) == cfg
    cfg.to_json(tmp_path / "c.json")
    assert CoCoMixConfig.from_json(tmp_path / "c.json") == cfg


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(n_heads=5), r"n_heads=5 is invalid: must be a divisor of d_model=128"),
        (dict(insert_layer=4), r"insert_layer=4 is invalid: must be in \[1, n_layers - 1 = 3\]"),
        (dict(concept_top_k=0), r"concept_top_k=0 is invalid"),
        (dict(mix_mode="concat"), r"mix_mode='concat' is invalid: must be one of"),
        (dict(act_fn="swish"), r"act_fn='swish' is invalid"),
        (dict(d_model=0), r"d_model=0 is invalid: must be an integer in \[1, 65,536\]"),
    ],
)
def test_invalid_fields_give_one_line_errors(changes, message):
    with pytest.raises(ValueError, match=message) as err:
        CoCoMixConfig(**changes)
    assert "\n" not in str(err.value)


def test_unknown_fields_and_presets_are_refused():
    with pytest.raises(ValueError, match="unknown field"):
        CoCoMixConfig.from_dict({"d_modle": 3})
    with pytest.raises(ValueError, match="unknown preset 'gpt5'"):
        CoCoMixConfig.preset("gpt5")


def test_paper_presets_have_the_paper_shapes():
    cfg = CoCoMixConfig.preset("gpt2-386m")
    assert (cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.insert_layer) == (1024, 24, 16, 5)
    assert (cfg.n_concepts, cfg.concept_top_k, cfg.n_ctx) == (32768, 32, 1024)
    assert CoCoMixConfig.preset("gpt2-69m-ntp").d_model == 624
    assert CoCoMixConfig.preset("gpt2-1.38b-ntp").d_model == 2096
    assert all(CoCoMixConfig.preset(name) for name in PRESETS)  # all valid
