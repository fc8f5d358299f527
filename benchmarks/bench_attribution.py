"""Concept-label extraction: our backward (stops at the SAE hook, no parameter gradients)
vs the official code's full backward, on a GPT-2-small-shaped random teacher.

Both sides use the same teacher implementation, SAE and scoring; only the way dL/dx at the
SAE hook is obtained differs, and the labels must come out identical.

    .venv/bin/python benchmarks/bench_attribution.py                 # TransformerLens teacher
    .venv/bin/python benchmarks/bench_attribution.py --impl cocomix  # CoCoMixModel, mix none
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

HOOK_LAYER = 5
HOOK = f"blocks.{HOOK_LAYER}.hook_resid_post"
SHAPE = dict(d_model=768, n_layers=12, n_heads=12, d_mlp=3072, d_vocab=50257, n_ctx=1024)


def build_teacher(impl: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if impl == "cocomix":
        from cocomix_lens import CoCoMixConfig, CoCoMixModel

        cfg = CoCoMixConfig(**SHAPE, mix_mode="none", n_concepts=32768, insert_layer=6)
        return CoCoMixModel(cfg).eval()
    from cocomix_lens.model.hooks import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(**SHAPE, d_head=64, act_fn="gelu_new",
                                  normalization_type="LN", seed=0)
    return HookedTransformer(cfg).eval()


def build_sae(d_sae: int, k: int) -> torch.nn.Module:
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    torch.manual_seed(1)
    cfg = TopKSAEConfig(d_in=SHAPE["d_model"], d_sae=d_sae, k=k,
                        normalize_activations="layer_norm", metadata=SAEMetadata(hook_name=HOOK))
    return TopKSAE(cfg).eval()


def flop_bound(seq: int, d_sae: int) -> tuple[float, float]:
    """(the issue's bound, the bound with the unembedding and SAE encoder counted).

    Forward FLOPs per token: 2 per multiply-add of every weight matrix, plus attention
    scores and mixing (4*T*d per layer, as computed densely). The full backward costs two
    forwards (activation and parameter gradients); ours costs one forward of the part above
    the hook (activation gradients only). The SAE encoder runs on both sides.
    """
    d, n_layers, d_mlp, vocab = (SHAPE[k] for k in ("d_model", "n_layers", "d_mlp", "d_vocab"))
    block = 2 * (4 * d * d + 2 * d * d_mlp) + 4 * seq * d
    unembed = 2 * d * vocab
    forward = n_layers * block + unembed
    above = (n_layers - HOOK_LAYER - 1) * block + unembed
    encoder = 2 * d * d_sae
    simple = 3.0 / (1.0 + 0.5)  # backward of the upper half ~ half a forward
    return simple, (3 * forward + encoder) / (forward + above + encoder)


def time_labels(extractor, tok: torch.Tensor, k: int) -> tuple[float, tuple]:
    t0 = time.perf_counter()
    out = extractor.labels(tok, k=k)
    return time.perf_counter() - t0, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--impl", choices=["transformer_lens", "cocomix"], default="transformer_lens")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--d-sae", type=int, default=32768)
    p.add_argument("--sae-k", type=int, default=32)
    p.add_argument("--k", type=int, default=4, help="labels per token")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from cocomix_lens.concepts import ConceptExtractor

    teacher, sae = build_teacher(args.impl), build_sae(args.d_sae, args.sae_k)
    fast = ConceptExtractor(teacher, sae, backward="hook")
    naive = ConceptExtractor(teacher, sae, backward="full")
    g = torch.Generator().manual_seed(0)
    tok = torch.randint(0, SHAPE["d_vocab"], (args.batch, args.seq), generator=g)
    time_labels(fast, tok, args.k)  # warm-up
    time_labels(naive, tok, args.k)
    t_fast, t_naive = [], []
    for _ in range(args.reps):  # interleaved, so load from other processes hits both
        dt, out_fast = time_labels(fast, tok, args.k)
        t_fast.append(dt)
        dt, out_naive = time_labels(naive, tok, args.k)
        t_naive.append(dt)
        same = torch.equal(out_fast[0], out_naive[0]) and torch.equal(out_fast[1], out_naive[1])
        assert same, "labels differ between the two backwards"
    assert all(p.grad is None for p in teacher.parameters())
    n_tok = args.batch * args.seq
    fast_tps = n_tok / statistics.median(t_fast)
    naive_tps = n_tok / statistics.median(t_naive)
    simple, full = flop_bound(args.seq, args.d_sae)
    print(f"teacher {args.impl} 768x12 vocab {SHAPE['d_vocab']}, TopK SAE {args.d_sae} "
          f"(K={args.sae_k}) at {HOOK}, batch {args.batch} x T={args.seq}, "
          f"{torch.get_num_threads()} threads, median of {args.reps}")
    print(f"naive (full backward, param grads): {naive_tps:8.1f} tokens/s")
    print(f"extractor (backward stops at hook): {fast_tps:8.1f} tokens/s")
    print(f"ratio {fast_tps / naive_tps:.2f}x   labels identical: yes")
    print(f"FLOP bound: {simple:.2f}x (issue's: backward above the hook ~ half a forward); "
          f"{full:.2f}x counting the unembedding and the SAE encoder")


if __name__ == "__main__":
    main()
