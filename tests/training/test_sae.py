"""training.sae: activations, SAE-Lens training (TopK, Matryoshka, JumpReLU, L1), the saved
format and the quality numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sae_lens import SAE, TopKSAE, TopKSAEConfig
from sae_lens.saes.sae import SAEMetadata

from cocomix_lens import CoCoMixConfig, CoCoMixModel
from training.sae import (
    SAESection,
    collect_activations,
    default_hook,
    sae_quality,
    save_sae,
    train_sae,
)

HOOK = "blocks.0.hook_resid_post"


def sparse_data(n: int = 4096, d: int = 16, n_dirs: int = 32, seed: int = 0) -> torch.Tensor:
    """Activations that are sparse sums of a few fixed directions plus an offset."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(n_dirs, d, generator=g)
    codes = (torch.rand(n, n_dirs, generator=g) < 3 / n_dirs) * torch.rand(n, n_dirs,
                                                                           generator=g)
    return codes @ dirs + torch.randn(d, generator=g)


def test_default_hook_is_the_middle_residual_stream():
    assert default_hook(12) == "blocks.5.hook_resid_post"  # the paper's GPT-2 SAE
    assert default_hook(4) == "blocks.1.hook_resid_post"
    assert default_hook(1) == "blocks.0.hook_resid_post"


def test_sae_quality_matches_a_hand_computation():
    torch.manual_seed(0)
    sae = TopKSAE(TopKSAEConfig(d_in=8, d_sae=40, k=3, metadata=SAEMetadata(hook_name=HOOK)))
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.5)
    x = torch.randn(100, 8)
    with torch.no_grad():
        z = sae.encode(x)
        x_hat = sae.decode(z)
    q = sae_quality(sae, x, batch=32)  # several batches
    ve = 1 - ((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    assert q["variance_explained"] == pytest.approx(float(ve), rel=1e-5)
    assert q["l0"] == pytest.approx(float((z != 0).sum(-1).float().mean()))
    assert q["dead_latents"] == int(((z != 0).sum(0) == 0).sum())
    assert q["dead_fraction"] == pytest.approx(q["dead_latents"] / 40)


def test_training_explains_the_variance_of_sparse_data():
    acts = sparse_data(n=2048)
    cfg = SAESection(d_sae=64, k=4, epochs=10, batch_size=256, lr=3e-3)
    sae = train_sae(acts, HOOK, cfg)
    q = sae_quality(sae, acts)
    assert q["variance_explained"] > 0.5  # 80 steps; from ~0 for the data mean alone
    assert q["l0"] <= 4
    assert sae.cfg.metadata.hook_name == HOOK


def test_saved_sae_loads_back_with_the_same_outputs(tmp_path):
    acts = sparse_data(n=1024)
    sae = train_sae(acts, HOOK, SAESection(d_sae=32, k=4, epochs=1, batch_size=256))
    out = save_sae(sae, tmp_path / "sae")
    save_sae(sae, tmp_path / "sae")  # replacing an existing SAE directory works too
    loaded = SAE.load_from_disk(out)
    assert loaded.cfg.architecture() == "topk" and loaded.cfg.metadata.hook_name == HOOK
    assert sorted(p.name for p in out.iterdir()) == ["cfg.json", "sae_weights.safetensors"]
    with torch.no_grad():
        want = sae.decode(sae.encode(acts[:64]))
        got = loaded.decode(loaded.encode(acts[:64]))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert sae_quality(loaded, acts) == pytest.approx(sae_quality(sae, acts), rel=1e-4)


def test_collected_activations_are_the_teachers_at_the_hook():
    torch.manual_seed(0)
    teacher = CoCoMixModel(CoCoMixConfig(d_model=16, n_layers=2, n_heads=2, d_vocab=50,
                                         n_ctx=16, mix_mode="none")).eval()
    tokens = np.random.default_rng(0).integers(0, 50, size=70).astype(np.uint16)
    acts = collect_activations(teacher, tokens, HOOK, n_tokens=10_000, seq_len=8, seed=3,
                               batch=3)
    assert acts.shape == (8 * 8, 16)  # every full window, in shard order
    windows = torch.from_numpy(tokens[:64].astype(np.int64)).view(8, 8)
    _, cache = teacher.run_with_cache(windows, names_filter=HOOK)
    torch.testing.assert_close(acts, cache[HOOK].reshape(-1, 16))
    some = collect_activations(teacher, tokens, HOOK, n_tokens=20, seq_len=8, seed=3)
    assert some.shape == (20, 16)


def test_a_split_shorter_than_a_window_is_a_clear_error():
    teacher = CoCoMixModel(CoCoMixConfig(d_model=16, n_layers=2, n_heads=2, d_vocab=50,
                                         n_ctx=16, mix_mode="none"))
    with pytest.raises(ValueError, match="fewer than one window"):
        collect_activations(teacher, np.zeros(5, np.uint16), HOOK, 10, seq_len=8, seed=0)


def test_matryoshka_sae_trains_saves_as_jumprelu_and_nests_its_prefixes(tmp_path):
    from cocomix_lens.concepts import load_sae
    from training.sae import matryoshka_widths

    assert matryoshka_widths(16, 512) == [16, 64, 256, 512]
    assert matryoshka_widths(8, 8) == [8]
    acts = sparse_data(n=2048)
    cfg = SAESection(d_sae=32, k=4, epochs=10, batch_size=256, lr=3e-3,
                     architecture="matryoshka_batchtopk", matryoshka_first=8)
    sae = train_sae(acts, HOOK, cfg)
    assert sae.cfg.matryoshka_widths == [8, 32]
    loaded = load_sae(save_sae(sae, tmp_path / "sae"))  # BatchTopK saves as JumpReLU
    assert loaded.cfg.architecture() == "jumprelu"
    q = sae_quality(loaded, acts)
    assert q["variance_explained"] > 0.5 and 1 <= q["l0"] < 16  # k = 4 on average in training
    with pytest.raises(ValueError, match="unknown SAE architecture 'relu'.*topk"):
        train_sae(acts, HOOK, SAESection(d_sae=32, k=4, architecture="relu"))


def test_jumprelu_sae_learns_a_threshold_per_latent_from_its_l0_target(tmp_path):
    from cocomix_lens.concepts import load_sae

    acts = sparse_data(n=2048)
    # 240 steps: a threshold moves by about lr per Adam step, whatever the L0 weight
    cfg = SAESection(d_sae=32, k=3, epochs=30, batch_size=256, lr=3e-3,
                     architecture="jumprelu", sparsity=0.5, pre_act_loss=0.1)
    sae = train_sae(acts, HOOK, cfg)
    assert sae.cfg.target_l0 == 3.0 and sae.cfg.l0_coefficient == 0.5
    assert sae.cfg.jumprelu_sparsity_loss_mode == "quadratic"
    assert sae.cfg.pre_act_loss_coefficient == 0.1
    threshold = sae.threshold.detach()
    # one threshold per latent, each raised from the shared init to pull L0 down toward k
    assert threshold.shape == (32,) and len(threshold.unique()) == 32
    assert float(threshold.min()) > cfg.threshold_init
    loaded = load_sae(save_sae(sae, tmp_path / "sae"))
    assert loaded.cfg.architecture() == "jumprelu"
    with torch.no_grad():  # a latent fires exactly where its pre-activation passes its threshold
        pre = loaded.process_sae_in(acts[:256]) @ loaded.W_enc + loaded.b_enc
        z = loaded.encode(acts[:256])
    torch.testing.assert_close(z != 0, pre > loaded.threshold)
    q = sae_quality(loaded, acts)
    assert q["variance_explained"] > 0.5 and 1 <= q["l0"] <= 12  # 16.4 after 80 steps


@pytest.mark.parametrize("architecture", ["standard", "gated"])
def test_l1_saes_train_with_the_sparsity_weight_as_their_l1_coefficient(architecture):
    acts = sparse_data(n=2048)
    dense, sparse = (train_sae(acts, HOOK, SAESection(
        d_sae=32, epochs=10, batch_size=256, lr=3e-3, architecture=architecture,
        sparsity=weight)) for weight in (0.01, 3.0))
    assert sparse.cfg.l1_coefficient == 3.0
    q_dense, q_sparse = sae_quality(dense, acts), sae_quality(sparse, acts)
    assert q_dense["variance_explained"] > 0.5
    assert q_sparse["l0"] < q_dense["l0"]  # a heavier L1 penalty, fewer active latents
