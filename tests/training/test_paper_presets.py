"""The paper's model sizes, built on the meta device (no memory), and their bundled run configs.

How the paper's names count parameters: like GPT-2 "124M" (= 124,439,808 for HF GPT-2 small),
i.e. every parameter once, tied W_E/W_U once, position embeddings included. With that count
the width-matched NTP baselines are 69.4M / 386.3M / 1.373B, the paper's 69M / 386M / 1.38B.
The CoCoMix students carry a 2 * d * C concept head on top (predictor d -> C and compressor
C -> d, C = 32,768): 85.1M / 422.0M / 1.448B in total. Leaving out the compressor, of which only
32 rows are used per token, gives 68.3M / 388.4M / 1.381B, also within 1.5 % of the names.
"""

from pathlib import Path

import pytest
import torch

from cocomix_lens import CoCoMixConfig, CoCoMixModel
from training.config import load_config
from training.trainer import count_params

V, CTX, C = 50257, 1024, 32768
CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"
PAPER = {  # name: (d_model, n_layers, NTP width, paper's size)
    "gpt2-69m": (512, 8, 624, 69e6),
    "gpt2-386m": (1024, 24, 1072, 386e6),
    "gpt2-1.38b": (2048, 24, 2096, 1.38e9),
}


def gpt2_params(d: int, n_layers: int) -> int:
    """Embeddings + positions + blocks (QKV, O, 4x MLP, two LNs, biases) + final LN."""
    return V * d + CTX * d + n_layers * (12 * d * d + 13 * d) + 2 * d


def head_params(d: int) -> int:
    """pre_bias, predictor (d x C + C), compressor (C x d + d)."""
    return d + (d * C + C) + (C * d + d)


def meta_count(preset: str) -> int:
    with torch.device("meta"):
        model = CoCoMixModel(CoCoMixConfig.preset(preset))
    assert all(p.is_meta for p in model.parameters())
    return count_params(model)


def test_gpt2_small_preset_counts_like_the_paper_teacher():
    assert meta_count("gpt2") == gpt2_params(768, 12) == 124_439_808


@pytest.mark.parametrize("name", PAPER)
def test_paper_preset_parameter_counts(name):
    d, n_layers, d_ntp, size = PAPER[name]
    cocomix, ntp = meta_count(name), meta_count(f"{name}-ntp")
    assert cocomix == gpt2_params(d, n_layers) + head_params(d)
    assert ntp == gpt2_params(d_ntp, n_layers)
    assert abs(ntp / size - 1) < 0.01  # the paper's names are the NTP baseline sizes
    without_compressor = cocomix - (C * d + d)
    assert abs(without_compressor / size - 1) < 0.015


@pytest.mark.parametrize("name,lr,windows,steps", [("gpt2-69m", 6e-4, 512, 40000),
                                                   ("gpt2-386m", 3e-4, 512, 40000),
                                                   ("gpt2-1.38b", 2e-4, 1024, 20000)])
def test_bundled_paper_configs_have_the_official_hyperparameters(name, lr, windows, steps):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.model.preset == name and cfg.objective == "cocomix"
    assert cfg.optim.lr == lr and cfg.optim.betas == (0.9, 0.95)
    assert cfg.optim.weight_decay == 0.1 and cfg.optim.min_lr_ratio == 0.1
    assert cfg.concept.lam == 0.1 and cfg.concept.k_attr == 4
    assert (cfg.data.batch_size, cfg.optim.max_steps) == (windows, steps)
    tokens = cfg.data.batch_size * cfg.data.seq_len * cfg.optim.max_steps
    assert abs(tokens / 20e9 - 1) < 0.1  # 20B tokens
    assert cfg.optim.warmup_steps / steps == pytest.approx(1 / 300, rel=0.05)
    arch = cfg.model_config(d_vocab=V)
    assert arch.n_ctx == cfg.data.seq_len == 1024 and arch.n_concepts == C
