"""The speed goals of the 69M shape on CPU, measured side by side in one run (`make bench`).

    step time   CoCoMix step with cached labels / NTP step      goal <= 1.70x (FLOP floor)
                full step with on-the-fly labels / NTP step     goal <= 2.8x
    memory      peak memory / NTP, cached labels                goal <= 1.3x
                peak memory / NTP, on-the-fly labels            goal <= 2.0x
    decoding    cached greedy decoding / memory-bandwidth floor goal >= 85 %

The steps are bench_train.py's (one optimizer step each, in a fresh process, CPU time with one
thread). Each ratio is printed next to the floor that stops it:
- step time: FLOPs of the step (bench_train.step_flops; with labels: the teacher's forward,
  its backward down to the SAE hook and the SAE);
- memory: NTP's peak plus the state the configuration must hold on top of it: 16 bytes per
  extra trainable parameter (weight, gradient, two AdamW moments: the concept head) and, on
  the fly, 4 bytes per frozen teacher and SAE parameter;
- decoding: a step must read every weight matrix it multiplies at least once; the floor step
  multiplies one row through each of them (the blocks, the concept predictor, the
  unembedding), timed alternately with the real decode steps so that a busy machine slows both.
  Beside it, the same products with the rows a step really multiplies (two per token from
  insert_layer on: token and concept slot): the gap between the two is the small-GEMM cost of
  the doubled stream, the rest of the gap to the step is everything else (attention, Python).

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


def memory_floors(ntp_peak_mb: float) -> dict[str, float]:
    """The floors of peak memory / NTP (see the module docstring)."""
    from cocomix_lens import CoCoMixModel

    sh, student, teacher_cfg = bench_train._configs("69m")
    with torch.device("meta"):
        ours = sum(p.numel() for p in CoCoMixModel(student).parameters())
        ntp = sum(p.numel() for p in CoCoMixModel(student.replace(mix_mode="none")).parameters())
        teacher = sum(p.numel() for p in CoCoMixModel(teacher_cfg).parameters())
    sae = 2 * teacher_cfg.d_model * sh["d_sae"] + sh["d_sae"] + teacher_cfg.d_model
    cached = ntp_peak_mb + 16 * (ours - ntp) / 2**20
    return {"cached": cached / ntp_peak_mb,
            "on-the-fly": (cached + 4 * (teacher + sae) / 2**20) / ntp_peak_mb}


def floor_matrices(model) -> list[tuple[torch.Tensor, int]]:
    """The weight matrices a cached decode step multiplies, each read once, with the rows a
    step multiplies through each (2 in the doubled stream): the blocks, the concept predictor
    and the unembedding ([d_in, d_out], contiguous as a decode step reads them; the k
    compressor rows, biases and the KV cache add under 2 % and are left out)."""
    mats = [(w, model.stream_factor(i)) for i, b in enumerate(model.blocks)
            for w in (b.attn.W_QKV, b.attn.W_O, b.mlp.W_in, b.mlp.W_out)]
    if model.cfg.has_concepts:
        mats.append((model.concept.W_pred, 1))
    mats.append((model.W_U.contiguous(), 1))
    return [(m.detach(), n) for m, n in mats]


def decode_row(new_tokens: int, repeats: int) -> dict:
    """Best time of a cached decode step vs best time of the floor step (one-row products
    through floor_matrices) and of the same products with the rows a step multiplies (two
    from insert_layer on), all alternated so that a busy machine slows them alike."""
    from cocomix_lens import CoCoMixConfig, CoCoMixModel

    torch.manual_seed(0)
    model = CoCoMixModel(CoCoMixConfig.preset("gpt2-69m")).eval()
    mats = floor_matrices(model)
    rows = {(m.shape[0], n): torch.randn(n, m.shape[0]) for m, _ in mats for n in (1, 2)}
    prompt = torch.randint(0, model.cfg.d_vocab, (1, PROMPT))
    step, floor, rows_floor = float("inf"), float("inf"), float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            cache = model.new_kv_cache(1, PROMPT + new_tokens)
            nxt = model(prompt, past_kv_cache=cache)[:, -1].argmax(-1, keepdim=True)
            for _ in range(new_tokens - 1):
                step = min(step, _timed(lambda: model(nxt, past_kv_cache=cache)))
                floor = min(floor, _timed(lambda: [rows[m.shape[0], 1] @ m for m, _ in mats]))
                rows_floor = min(rows_floor, _timed(
                    lambda: [rows[m.shape[0], n] @ m for m, n in mats]))
    n_bytes = sum(m.numel() * m.element_size() for m, _ in mats)
    return {"tok_s": 1 / step, "floor": 1 / floor, "bandwidth": n_bytes / floor,
            "bytes": n_bytes, "rows_floor": 1 / rows_floor}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


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
    mem = memory_floors(ntp["peak_mb"])
    line("peak memory / NTP, cached labels", c["peak_mb"] / ntp["peak_mb"], "<=",
         GOALS["cached_mem"], f"{mem['cached']:.2f}x (concept head + its AdamW state)")
    line("peak memory / NTP, on-the-fly labels", o["peak_mb"] / ntp["peak_mb"], "<=",
         GOALS["otf_mem"], f"{mem['on-the-fly']:.2f}x (+ teacher and SAE weights)")
    line("cached decoding / memory-bandwidth floor", dec["tok_s"] / dec["floor"], ">=",
         GOALS["decode_floor"], f"{dec['floor']:.1f} tok/s = {dec['bytes'] / 1e6:.0f} MB per "
         f"token at {dec['bandwidth'] / 1e9:.1f} GB/s", pct=True)
    lines.append(f"{'  the same products with 2 rows from insert_layer':<44}"
                 f"{dec['tok_s'] / dec['rows_floor']:>10.0%}{'':>10}  {dec['rows_floor']:.1f} "
                 "tok/s (the matmuls a step runs, nothing else)")
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
    p.add_argument("--new-tokens", type=int, default=32, help="greedy tokens per decoding run")
    p.add_argument("--repeats", type=int, default=2, help="decoding runs (the best step counts)")
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"== speed goals: 69M shape (gpt2-69m, T=256, batch 2, C=32,768), CPU, 1 thread, "
          f"torch {torch.__version__} ==", flush=True)
    dec = decode_row(args.new_tokens, args.repeats)
    rows = train_rows(args.steps, args.warmup)
    print("\n".join(report(rows, dec)))


if __name__ == "__main__":
    main()
