"""Teacher and SAE loading: local directories, the paper path offline, clear fetch errors."""

import pytest
import torch
from helpers_concepts import tiny_hooked_transformer, tiny_sae
from helpers_model import tiny_model
from sae_lens import SAE
from transformer_lens import HookedTransformer

from cocomix_lens.concepts import (
    FetchError,
    load_sae,
    load_teacher,
    load_teacher_model,
    module_sha256,
    sae_sha256,
)


def _offline(*args, **kwargs):
    raise OSError("We couldn't connect to 'https://huggingface.co' to load this file")


def test_paper_path_loads_gpt2_and_the_oai_32k_sae(monkeypatch):
    calls = {}
    teacher, sae = tiny_hooked_transformer(), tiny_sae()

    sae.cfg.metadata.model_from_pretrained_kwargs = {"center_writing_weights": False}

    def fake_model(name, device="cpu", **kw):
        calls["model"] = (name, kw)
        return teacher

    def fake_sae(release, sae_id, device="cpu", **kw):
        calls["sae"] = (release, sae_id)
        return sae

    monkeypatch.setattr(HookedTransformer, "from_pretrained", fake_model)
    monkeypatch.setattr(SAE, "from_pretrained", fake_sae)
    loaded = load_teacher("gpt2")
    # the teacher is built the way the SAE's training activations were recorded
    assert calls == {"model": ("gpt2", {"center_writing_weights": False}),
                     "sae": ("gpt2-small-resid-post-v5-32k", "blocks.5.hook_resid_post")}
    assert loaded.model is teacher and loaded.sae is sae
    assert loaded.sae_spec == "gpt2-small-resid-post-v5-32k:blocks.5.hook_resid_post"


def test_failed_teacher_download_says_what_and_how_to_go_local(monkeypatch):
    monkeypatch.setattr(HookedTransformer, "from_pretrained", _offline)
    monkeypatch.setattr(SAE, "from_pretrained", lambda *a, **kw: tiny_sae())
    with pytest.raises(FetchError, match=r"could not fetch teacher 'gpt2'.*OSError.*"
                                         r"HF_HUB_OFFLINE=1.*local CoCoMixModel checkpoint"):
        load_teacher("gpt2")


def test_failed_sae_download_says_what_and_how_to_go_local(monkeypatch):
    monkeypatch.setattr(SAE, "from_pretrained", _offline)
    with pytest.raises(FetchError, match=r"could not fetch SAE 'gpt2-small-resid-post-v5-32k' "
                                         r"/ 'blocks.5.hook_resid_post'.*save_model\(DIR\)"):
        load_sae("gpt2-small-resid-post-v5-32k", "blocks.5.hook_resid_post")


def test_unknown_sae_id_of_a_known_release_lists_valid_ids():
    with pytest.raises(ValueError, match=r"has no id 'blocks.99.*blocks.0.hook_resid_post"):
        load_sae("gpt2-small-resid-post-v5-32k", "blocks.99.hook_resid_post")


def test_local_sae_directory_round_trips(tmp_path):
    sae = tiny_sae()
    sae.save_model(tmp_path / "sae")
    loaded = load_sae(tmp_path / "sae")
    assert torch.equal(loaded.W_dec, sae.W_dec) and torch.equal(loaded.b_enc, sae.b_enc)
    assert loaded.cfg.normalize_activations == "layer_norm" and loaded.cfg.k == 5
    assert sae_sha256(loaded) == sae_sha256(sae)


def test_local_cocomix_checkpoint_is_a_teacher(tmp_path):
    model = tiny_model(mix_mode="none")
    model.save_pretrained(tmp_path / "teacher")
    sae = tiny_sae(d_in=model.cfg.d_model)
    sae.save_model(tmp_path / "sae")
    loaded = load_teacher(tmp_path / "teacher", sae=tmp_path / "sae")
    assert module_sha256(loaded.model) == module_sha256(model) == loaded.model_sha256
    assert loaded.sae_sha256 == sae_sha256(sae)


def test_directory_without_a_checkpoint_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_teacher_model(tmp_path)
    with pytest.raises(FileNotFoundError, match="no cfg.json"):
        load_sae(tmp_path)


def test_teacher_without_paper_sae_needs_an_explicit_sae():
    with pytest.raises(ValueError, match="no default SAE for teacher 'pythia-70m'"):
        load_teacher("pythia-70m")


def test_hashes_change_with_weights_and_with_sae_config():
    a, b = tiny_hooked_transformer(seed=0), tiny_hooked_transformer(seed=0)
    assert module_sha256(a) == module_sha256(b)
    with torch.no_grad():
        b.W_U[0, 0] += 1e-3
    assert module_sha256(a) != module_sha256(b)
    assert sae_sha256(tiny_sae(k=5)) != sae_sha256(tiny_sae(k=4))
