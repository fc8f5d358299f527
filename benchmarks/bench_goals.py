"""The speed goals of the 69M shape on CPU, measured side by side in one run (`make bench`).

    step time   CoCoMix step with cached labels / NTP step      goal <= 1.70x (FLOP floor)
                full step with on-the-fly labels / NTP step     goal <= 2.8x
    memory      peak memory / NTP, cached labels                goal <= 1.3x
                peak memory / NTP, on-the-fly labels            goal <= 2.0x
    decoding    cached greedy decoding / memory-bandwidth floor goal >= 85 %

The steps are bench_train.py's (one optimizer step each, in a fresh process, CPU time with one
thread). The decoding floor: a decode step must read every weight it multiplies once (the
blocks, the concept predictor, the k compressor rows, the tied unembedding) and the KV cache;
it cannot run faster than those bytes divided by the bandwidth that a one-row matrix product
reaches on this machine, measured in the same process right before the decoding.

    python benchmarks/bench_goals.py [--steps 2] [--new-tokens 64]
"""

from __future__ import annotations

import argparse
import time

import bench_train
import torch

GOALS = {"cached_time": 1.70, "otf_time": 2.8, "cached_mem": 1.3, "otf_mem": 2.0,
         "decode_floor": 0.85}
PROMPT = 16


def train_rows(steps: int, warmup: int) -> dict[str, dict]:
    return {mode: bench_train.measure("69m", mode, steps, warmup, threads=1)
            for mode in ("ntp", "cached", "on-the-fly")}


def bytes_per_token(model, context: int) -> float:
    """Bytes a cached decode step reads at `context` cached tokens: every weight it multiplies
    (the embedding rows and all but k compressor rows are gathered, not read) and the KV
    cache (two positions per token from insert_layer on)."""
    cfg = model.cfg
    skip = {"pos_embed.W_pos", "concept.W_comp"}
    weights = sum(p.numel() for n, p in model.named_parameters() if n not in skip)
    weights += cfg.concept_top_k * cfg.d_model if cfg.has_concepts else 0
    kv = sum(2 * context * model.stream_factor(i) * cfg.d_model for i in range(cfg.n_layers))
    return 4.0 * (weights + kv)


def bandwidth(n_bytes: int = 1 << 28, repeats: int = 5) -> float:
    """Bytes/s of a one-row matrix product over an n_bytes float32 matrix (best of repeats)."""
    W = torch.randn(512, n_bytes // (4 * 512))
    x = torch.randn(1, 512)
    best = min(_timed(lambda: x @ W) for _ in range(repeats))
    return W.numel() * 4 / best


def decode_rate(model, new_tokens: int, repeats: int) -> float:
    x = torch.randint(0, model.cfg.d_vocab, (1, PROMPT), generator=torch.Generator().manual_seed(0))
    model.generate(x, 4, temperature=0)  # warm-up
    return new_tokens / min(_timed(lambda: model.generate(x, new_tokens, temperature=0))
                            for _ in range(repeats))


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def decode_row(new_tokens: int, repeats: int) -> dict:
    from cocomix_lens import CoCoMixConfig, CoCoMixModel

    torch.manual_seed(0)
    model = CoCoMixModel(CoCoMixConfig.preset("gpt2-69m")).eval()
    with torch.inference_mode():
        bw = bandwidth()
        rate = decode_rate(model, new_tokens, repeats)
    per_token = bytes_per_token(model, PROMPT + new_tokens // 2)
    return {"tok_s": rate, "bandwidth": bw, "bytes": per_token, "floor": bw / per_token}


def report(rows: dict[str, dict], dec: dict) -> list[str]:
    ntp, c, o = rows["ntp"], rows["cached"], rows["on-the-fly"]
    lines = [f"{'goal':<44}{'measured':>10}{'goal':>10}  floor"]

    def line(label, value, op, goal, floor="", pct=False):
        ok = value <= goal if op == "<=" else value >= goal
        fmt = (lambda v: f"{v:.0%}") if pct else (lambda v: f"{v:.2f}x")
        lines.append(f"{label:<44}{fmt(value):>10}{op + ' ' + fmt(goal):>10}  {floor}"
                     f"{'' if ok else '  (missed)'}")

    line("CoCoMix step / NTP step, cached labels", c["step_s"] / ntp["step_s"], "<=",
         GOALS["cached_time"], f"{bench_train.flop_bound('69m', 'cached'):.2f}x (FLOPs)")
    line("full step / NTP step, on-the-fly labels", o["step_s"] / ntp["step_s"], "<=",
         GOALS["otf_time"], f"{_flops_with_labels('on-the-fly'):.2f}x (FLOPs)")
    line("peak memory / NTP, cached labels", c["peak_mb"] / ntp["peak_mb"], "<=",
         GOALS["cached_mem"])
    line("peak memory / NTP, on-the-fly labels", o["peak_mb"] / ntp["peak_mb"], "<=",
         GOALS["otf_mem"])
    line("cached decoding / memory-bandwidth floor", dec["tok_s"] / dec["floor"], ">=",
         GOALS["decode_floor"], f"{dec['floor']:.1f} tok/s = {dec['bandwidth'] / 1e9:.1f} GB/s"
         f" / {dec['bytes'] / 1e6:.0f} MB per token", pct=True)
    lines.append(f"(NTP step {ntp['step_s']:.2f} s, cached {c['step_s']:.2f} s, on the fly "
                 f"{o['step_s']:.2f} s, CPU time; peak {ntp['peak_mb']:,.0f} / "
                 f"{c['peak_mb']:,.0f} / {o['peak_mb']:,.0f} MB; decoding "
                 f"{dec['tok_s']:.1f} tok/s)")
    return lines


def _flops_with_labels(mode: str) -> float:
    return bench_train.step_flops("69m", mode)[1] / bench_train.step_flops("69m", "ntp")[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2, help="measured training steps per mode")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured training steps first")
    p.add_argument("--new-tokens", type=int, default=64, help="greedy tokens per decoding run")
    p.add_argument("--repeats", type=int, default=2, help="decoding runs (the best counts)")
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"== speed goals: 69M shape (gpt2-69m, T=256, batch 2, C=32,768), CPU, 1 thread, "
          f"torch {torch.__version__} ==", flush=True)
    dec = decode_row(args.new_tokens, args.repeats)
    rows = train_rows(args.steps, args.warmup)
    print("\n".join(report(rows, dec)))


if __name__ == "__main__":
    main()
