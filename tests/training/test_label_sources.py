"""Labels from the label cache and from a ConceptExtractor agree, and train a CoCoMix model."""

import numpy as np
import pytest
import torch
from helpers_concepts import tiny_hooked_transformer, tiny_sae, write_shards
from helpers_training import tiny_run

from cocomix_lens.concepts import ConceptExtractor
from cocomix_lens.concepts.label_cache import LabelCache
from training.label_sources import CachedLabels, ExtractorLabels, as_label_source
from training.trainer import train

L = 16  # label-cache window = training seq_len


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("labels")
    rng = np.random.default_rng(0)
    shards = write_shards(root / "shards", {"train": rng.integers(0, 39, 400),
                                            "val": rng.integers(0, 39, 120)})
    extractor = ConceptExtractor(tiny_hooked_transformer(), tiny_sae(d_sae=48))
    cache = LabelCache.build(root / "cache", shards, extractor, teacher_sha="t", sae_sha="s",
                             k=4, window=L, batch_size=4)
    return shards, extractor, cache


def test_dispatch_and_metadata(setup):
    shards, extractor, cache = setup
    cached, live = as_label_source(cache, 4), as_label_source(extractor, 4)
    assert isinstance(cached, CachedLabels) and isinstance(live, ExtractorLabels)
    assert (cached.align, cached.n_concepts) == (L, 48)
    assert (live.align, live.n_concepts) == (1, 48)
    with pytest.raises(ValueError, match="k=4 labels per token but k_attr=5"):
        CachedLabels(cache, 5)


def test_cached_and_on_the_fly_labels_agree_on_aligned_windows(setup):
    shards, extractor, cache = setup
    starts = np.array([0, 3 * L, 7 * L])
    x, y = shards.batch("train", starts, L)
    a = as_label_source(cache, 4).get("train", starts, x, y)
    b = as_label_source(extractor, 4).get("train", starts, x, y)
    assert a.dtype == b.dtype == torch.long and a.shape == (3, L, 4)
    cached_scores = cache.label_scores("train", starts, L)
    _, live_scores = extractor.labels(x, k=4, targets=y)
    torch.testing.assert_close(cached_scores, live_scores, atol=1e-3, rtol=1e-2)  # fp16 cache
    clear = cached_scores[..., 0] > 1e-3  # a positive best score: no tie at zero
    assert clear.sum() > 20 and torch.equal(a[..., 0][clear], b[..., 0][clear])


def test_cocomix_trains_from_the_label_cache(setup, tmp_path):
    shards, _, cache = setup
    cfg = tiny_run(shards.root, "cocomix", steps=3, data__seq_len=L, model__n_concepts=48)
    s = train(cfg, data=shards, labels=cache, out_dir=tmp_path)
    assert s["steps"] == 3 and np.isfinite(s["concept_ce"])
    with pytest.raises(ValueError, match="--model.n_concepts 48"):
        train(tiny_run(shards.root, "cocomix", steps=1, data__seq_len=L), data=shards,
              labels=cache, out_dir=tmp_path / "bad")
