"""Pause-token baseline: a learned vector interleaved at insert_layer instead of c_t."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint

from cocomix_lens.config import CoCoMixConfig
from cocomix_lens.model.components import hooked


class PauseHead(nn.Module):
    """Same interface as ConceptHead (vector, logits) but with no concept logits."""

    def __init__(self, cfg: CoCoMixConfig):
        super().__init__()
        self.pause_vector = nn.Parameter(torch.zeros(cfg.d_model))
        self.hook_vector = HookPoint()  # [batch, pos, d_model] the pause vector per slot
        self.hook_mixed = HookPoint()  # [batch, 2 * pos, d_model] interleaved stream

    def forward(self, h: Tensor) -> tuple[Tensor, None]:
        return hooked(self.hook_vector, self.pause_vector.expand_as(h)), None
