"""Attribution methods on a hand-sized readout: expected numbers written out by hand."""

import pytest
import torch

from cocomix_lens.concepts.methods import (
    METHODS,
    Readout,
    decoder_dot,
    decoder_dot_on_support,
    get_method,
)

# One position, d_in = 2, three latents. Decoder rows d_0 = (1, 0), d_1 = (0, 1), d_2 = (1, 1);
# gradient g = (0.5, -1) so <g, d> = (0.5, -1, -0.5).
DECODER = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
GRAD = torch.tensor([[[0.5, -1.0]]])
ACTS = torch.tensor([[[2.0, 0.0, 1.0]]])  # latent 1 inactive (TopK / ReLU zeroed it)
PRE = torch.tensor([[[2.0, -1.0, 1.0]]])
READOUT = Readout(acts=ACTS, decoder=DECODER, pre=PRE, grad=GRAD)

EXPECTED = {
    # act * <g, d>: 2*0.5, 0*(-1), 1*(-0.5)
    "attribution": [1.0, 0.0, -0.5],
    # pre * <g, d>: 2*0.5, (-1)*(-1), 1*(-0.5) -- the inactive latent scores too
    "attribution_preact": [1.0, 1.0, -0.5],
    "attribution_abs": [1.0, 0.0, 0.5],
    "attribution_neg": [-1.0, 0.0, 0.5],
    "activation": [2.0, 0.0, 1.0],
}


def test_registry_holds_the_five_methods():
    assert set(METHODS) == set(EXPECTED)
    assert not METHODS["activation"].needs_grad and METHODS["attribution_preact"].needs_pre


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_method_matches_hand_computed_scores(name):
    scores = get_method(name).score(READOUT)
    assert scores.tolist() == [[EXPECTED[name]]]


def test_top_labels_of_the_hand_example():
    # attribution ranks latent 0 (1.0) above latent 1 (0.0) above latent 2 (-0.5)
    top = get_method("attribution").score(READOUT).topk(2, dim=-1).indices
    assert top.tolist() == [[[0, 1]]]


def test_sparse_decoder_dot_equals_dense_on_the_support():
    g = torch.Generator().manual_seed(0)
    grad = torch.randn(3, 7, 16, generator=g)
    decoder = torch.randn(200, 16, generator=g)
    pre = torch.randn(3, 7, 200, generator=g)
    top = pre.topk(6, dim=-1)
    acts = torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())
    sparse = decoder_dot_on_support(grad, decoder, acts)
    dense = decoder_dot(grad, decoder)
    mask = acts != 0
    torch.testing.assert_close(sparse[mask], dense[mask], rtol=1e-5, atol=1e-6)
    assert (sparse[~mask] == 0).all()


def test_unknown_method_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match="attribution_abs"):
        get_method("saliency")
