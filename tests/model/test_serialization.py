"""save_pretrained / from_pretrained: round trips, atomic writes, clear errors."""

import json

import pytest
import torch
from helpers_model import tiny_model, tokens

from cocomix_lens import CoCoMixModel
from cocomix_lens.data.tokenizer import tokenizer_sha256, train_bpe
from cocomix_lens.model import serialization


@pytest.mark.parametrize("mix_mode", ["interleave", "add", "pause", "none"])
def test_round_trip_gives_identical_logits(tmp_path, mix_mode):
    model, x = tiny_model(mix_mode=mix_mode), tokens()
    model.save_pretrained(tmp_path, metadata={"tokenizer_sha256": "abc"})
    loaded = CoCoMixModel.from_pretrained(tmp_path)
    assert torch.equal(loaded(x), model(x))
    assert loaded.cfg == model.cfg
    assert loaded.metadata == {"tokenizer_sha256": "abc"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def test_missing_files_are_named_with_a_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json not found.*save_pretrained"):
        CoCoMixModel.from_pretrained(tmp_path)
    tiny_model().save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors not found"):
        CoCoMixModel.from_pretrained(tmp_path)


def test_unknown_format_version_is_refused(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    blob = json.loads((tmp_path / "config.json").read_text())
    blob["format_version"] = 99
    (tmp_path / "config.json").write_text(json.dumps(blob))
    with pytest.raises(ValueError, match="unknown format_version 99.*upgrade"):
        CoCoMixModel.from_pretrained(tmp_path)


def test_shape_mismatch_is_refused(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    blob = json.loads((tmp_path / "config.json").read_text())
    blob["config"]["n_concepts"] = 50
    (tmp_path / "config.json").write_text(json.dumps(blob))
    pattern = r"model.safetensors: concept\.W_\w+ has shape \(\d+, \d+\).*saved together"
    with pytest.raises(ValueError, match=pattern):
        CoCoMixModel.from_pretrained(tmp_path)


def test_an_inflated_config_is_refused_from_the_weights_header_before_allocating(tmp_path):
    import tracemalloc

    tiny_model().save_pretrained(tmp_path)
    blob = json.loads((tmp_path / "config.json").read_text())
    blob["config"]["d_vocab"] = 1 << 20  # in range, but 4 GB of embeddings at d_model 1024
    blob["config"]["d_model"] = 1024
    blob["config"]["n_heads"] = 4
    (tmp_path / "config.json").write_text(json.dumps(blob))
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"config.json implies \(1048576, 1024\)"):
        CoCoMixModel.from_pretrained(tmp_path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50e6  # the meta device allocates nothing


def test_config_json_field_of_the_wrong_type_names_the_file(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    blob = json.loads((tmp_path / "config.json").read_text())
    blob["config"]["d_model"] = "wide"
    (tmp_path / "config.json").write_text(json.dumps(blob))
    with pytest.raises(ValueError, match=r"config.json: CoCoMixConfig.d_model='wide'.*fix"):
        CoCoMixModel.from_pretrained(tmp_path)


def test_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    model, x = tiny_model(), tokens()
    model.save_pretrained(tmp_path)
    other = tiny_model(seed=5)

    def crash(tensors):
        raise OSError("disk full")

    monkeypatch.setattr(serialization, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        other.save_pretrained(tmp_path)
    assert torch.equal(CoCoMixModel.from_pretrained(tmp_path)(x), model(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def test_tokenizer_travels_with_the_model_and_a_different_one_is_refused(tmp_path):
    texts = ["the cat sat on the mat", "a dog ran in the park"] * 20
    tok = train_bpe(texts, vocab_size=300)
    other = train_bpe(["completely different words here"] * 20, vocab_size=280)
    model = tiny_model()
    model.save_pretrained(tmp_path, tokenizer=tok)
    loaded = CoCoMixModel.from_pretrained(tmp_path)
    assert loaded.tokenizer.decode(tok.encode("the cat").ids) == "the cat"
    assert loaded.metadata["tokenizer_sha256"] == tokenizer_sha256(tok)
    loaded.check_tokenizer(tok)
    with pytest.raises(ValueError, match="tokenizer mismatch.*fix:"):
        loaded.check_tokenizer(other)
    other.save(str(tmp_path / "tokenizer.json"))  # swapped on disk: refused at load
    with pytest.raises(ValueError, match="tokenizer mismatch"):
        CoCoMixModel.from_pretrained(tmp_path)
