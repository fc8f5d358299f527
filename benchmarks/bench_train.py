"""Training-step cost: NTP vs CoCoMix (label cache, on-the-fly labels) vs the naive setup.

One optimizer step (forward, backward, AdamW) of the student, measured side by side for the
69M shape (T=256, V=50,257, C=32,768; a GPT-2-small-shaped random teacher with a 32,768-latent
TopK SAE at blocks.5.hook_resid_post) and the tiny preset (the pipeline's teacher shape):

    ntp        the same student shape with mix_mode none
    cached     CoCoMix, labels read from a label-cache array (a memmap gather in real runs)
    on-the-fly CoCoMix, labels from ConceptExtractor: teacher forward, backward only from the
               loss down to the SAE hook, teacher parameters frozen
    naive      the official code's setup: teacher parameters requiring grad and a full
               backward into them, dense C x d compressor, explicit attention (no SDPA)

Each configuration runs in a fresh subprocess so its peak memory is its own: on CPU the peak
RSS (VmHWM) above the RSS after imports; on GPU torch.cuda.max_memory_allocated. Next to each
CoCoMix row: the FLOP lower bound of its step-time ratio to NTP (the doubled stream after
insert_layer, the C-wide predictor, the compressor as computed: k gathered rows or C-wide).

    python benchmarks/bench_train.py [--quick] [--shapes tiny 69m] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODES = ("ntp", "cached", "on-the-fly", "naive")
# Targets at the 69M shape (issue 5): step time, peak memory and speed vs the naive setup.
TARGETS = {"cached_time": 1.8, "cached_mem": 1.5, "otf_mem": 2.0, "otf_vs_naive": 1.8,
           "cached_vs_naive": 3.0}


# ---- shapes -----------------------------------------------------------------------------------
def shape(name: str) -> dict:
    """Student preset, teacher preset + overrides, SAE, window length and batch per shape."""
    if name == "69m":
        return {"student": "gpt2-69m", "teacher": "gpt2", "teacher_overrides": {},
                "hook": "blocks.5.hook_resid_post", "d_sae": 32768, "sae_k": 32,
                "seq_len": 256, "batch": 2}
    return {"student": "tiny", "teacher": "tiny",
            "teacher_overrides": {"d_model": 192, "n_heads": 6, "n_layers": 4,
                                  "mix_mode": "none"},
            "hook": "blocks.1.hook_resid_post", "d_sae": 2048, "sae_k": 32,
            "seq_len": 128, "batch": 16}


def forward_flops(cfg, seq_len: int, gathered: bool) -> float:
    """Matmul FLOPs of one forward over one sequence (causal attention counted once)."""
    d, d_mlp, n_layers = cfg.d_model, cfg.d_mlp, cfg.n_layers
    per_token = 2 * (4 * d * d + 2 * d * d_mlp)  # QKVO + MLP

    def block(n_pos: int) -> float:
        return per_token * n_pos + 2 * n_pos * n_pos * d  # + QK^T and AV, causal half

    if cfg.mix_mode == "none":
        blocks = n_layers * block(seq_len)
        head = 0.0
    else:
        after = 2 * seq_len if cfg.doubles_stream else seq_len
        blocks = cfg.insert_layer * block(seq_len) + (n_layers - cfg.insert_layer) * block(after)
        compress = cfg.concept_top_k if gathered else cfg.n_concepts
        head = 2 * d * cfg.n_concepts * seq_len + 2 * compress * d * seq_len
    return blocks + head + 2 * d * cfg.d_vocab * seq_len  # + unembedding of T slots


def _configs(shape_name: str):
    from cocomix_lens import CoCoMixConfig

    sh = shape(shape_name)
    student = CoCoMixConfig.preset(sh["student"], d_vocab=_vocab(sh), n_concepts=sh["d_sae"])
    teacher = CoCoMixConfig.preset(sh["teacher"], d_vocab=_vocab(sh), **sh["teacher_overrides"])
    return sh, student, teacher


def teacher_flops(shape_name: str, mode: str) -> float:
    """FLOPs per sequence of the labels: teacher forward, the backward each mode runs, SAE."""
    if mode in ("ntp", "cached"):
        return 0.0
    sh, _, tcfg = _configs(shape_name)
    t = sh["seq_len"]
    fwd = forward_flops(tcfg, t, True)
    if mode == "naive":  # full backward: activation and weight gradients everywhere
        back = 2 * fwd
    else:  # activation gradients only, from the loss down to the hook's block
        above = tcfg.n_layers - 1 - int(sh["hook"].split(".")[1])
        unembed = 2 * tcfg.d_model * tcfg.d_vocab * t
        back = (fwd - unembed) * above / tcfg.n_layers + unembed
    return fwd + back + 2 * tcfg.d_model * sh["d_sae"] * t  # + the SAE encoder


def step_flops(shape_name: str, mode: str) -> tuple[float, float]:
    """(student, student + labels) FLOPs per sequence of one training step (3x forward)."""
    sh, student, _ = _configs(shape_name)
    cfg = student.replace(mix_mode="none") if mode == "ntp" else student
    own = 3 * forward_flops(cfg, sh["seq_len"], gathered=mode != "naive")
    return own, own + teacher_flops(shape_name, mode)


def flop_bound(shape_name: str, mode: str) -> float:
    """FLOP lower bound of the student's CoCoMix / NTP step-time ratio (labels not counted)."""
    return step_flops(shape_name, mode)[0] / step_flops(shape_name, "ntp")[0]


def _vocab(sh: dict) -> int:
    from cocomix_lens import CoCoMixConfig

    return CoCoMixConfig.preset(sh["student"]).d_vocab


# ---- one configuration (child process) --------------------------------------------------------
def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker(shape_name: str, mode: str, steps: int, warmup: int, threads: int) -> dict:
    import torch

    from cocomix_lens import CoCoMixConfig, CoCoMixModel
    from training.config import OptimSection
    from training.objectives import Batch, LossWeights, get_objective
    from training.optim import build_optimizer

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if threads:
        torch.set_num_threads(threads)
    base_rss = _rss_mb("VmRSS")
    torch.manual_seed(0)
    sh = shape(shape_name)
    vocab, t, b = _vocab(sh), sh["seq_len"], sh["batch"]
    cfg = CoCoMixConfig.preset(sh["student"], d_vocab=vocab, n_concepts=sh["d_sae"])
    if mode == "ntp":
        cfg = cfg.replace(mix_mode="none")
    student = CoCoMixModel(cfg).to(dev)
    objective = get_objective("ntp" if mode == "ntp" else "cocomix")
    optimizer = build_optimizer(student, OptimSection())
    label_fn = _label_source(sh, mode, vocab, dev, student)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, vocab, (b, t + 1), generator=g).to(dev)
    times = []
    for i in range(warmup + steps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        labels = label_fn(x[:, :-1], x[:, 1:], i)
        loss, _ = objective(student, Batch(x[:, :-1], x[:, 1:], labels), LossWeights(), student)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - t0, time.process_time() - c0))
    wall = statistics.median(t for t, _ in times)
    cpu = statistics.median(c for _, c in times)
    # On a shared CPU, wall time depends on the neighbours; with one thread the CPU time of
    # the step is the work itself, so the ratios use it.
    step = cpu if dev.type == "cpu" and threads == 1 else wall
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = _rss_mb("VmHWM") - base_rss
    return {"shape": shape_name, "mode": mode, "step_s": step, "wall_s": wall, "cpu_s": cpu,
            "threads": torch.get_num_threads(), "tok_s": b * t / step,
            "peak_mb": peak, "device": dev.type, "batch": b, "seq_len": t}


def _label_source(sh: dict, mode: str, vocab: int, dev, student):
    """labels(x, y, step) -> [batch, pos, 4] int64 (None for NTP)."""
    import torch

    if mode == "ntp":
        return lambda x, y, i: None
    if mode == "cached":
        # A label cache is a [n_tokens, k] array indexed by token position.
        n = sh["batch"] * sh["seq_len"]
        table = torch.randint(0, sh["d_sae"], (n * 4, 4), dtype=torch.int16).to(torch.int32)
        return lambda x, y, i: table[(i % 4) * n:(i % 4 + 1) * n].view(
            *x.shape, 4).to(device=dev, dtype=torch.long)
    from cocomix_lens.concepts import ConceptExtractor

    naive = mode == "naive"
    teacher, sae = _teacher_and_sae(sh, vocab, dev)
    if naive:
        teacher.requires_grad_(True)
        teacher.use_sdpa = False
        student.use_sdpa = False
        student.concept.use_gather = False
    ex = ConceptExtractor(teacher, sae, backward="full" if naive else "hook")
    return lambda x, y, i: ex.labels(x, k=4, targets=y)[0]


def _teacher_and_sae(sh: dict, vocab: int, dev):
    import torch
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    from cocomix_lens import CoCoMixConfig, CoCoMixModel

    tcfg = CoCoMixConfig.preset(sh["teacher"], d_vocab=vocab, **sh["teacher_overrides"])
    teacher = CoCoMixModel(tcfg).to(dev).eval().requires_grad_(False)
    sae = TopKSAE(TopKSAEConfig(d_in=tcfg.d_model, d_sae=sh["d_sae"], k=sh["sae_k"],
                                normalize_activations="layer_norm",
                                metadata=SAEMetadata(hook_name=sh["hook"]),
                                device=str(dev)))
    with torch.no_grad():
        for p in sae.parameters():
            p.normal_(0.0, 0.02)
    return teacher, sae.to(dev).eval()


# ---- parent: run every configuration, print the table -----------------------------------------
def measure(shape_name: str, mode: str, steps: int, warmup: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", shape_name, mode, "--steps", str(steps),
           "--warmup", str(warmup), "--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode:
        raise RuntimeError(f"{shape_name}/{mode} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> list[str]:
    """Measured step time, memory and speed ratios, each next to its FLOP bound."""
    by = {r["mode"]: r for r in rows}
    ntp, naive = by["ntp"], by.get("naive")
    name = rows[0]["shape"]
    total = {m: step_flops(name, m)[1] for m in by}
    out = [f"{'config':<12}{'step s':>8}{'tok/s':>9}{'peak MB':>9}{'time/NTP':>10}"
           f"{'bound':>8}{'+labels':>9}{'mem/NTP':>9}{'tok/s/naive':>13}{'bound':>8}"]
    for r in rows:
        m = r["mode"]
        vs_naive = r["tok_s"] / naive["tok_s"] if naive else float("nan")
        out.append(f"{m:<12}{r['step_s']:>8.3f}{r['tok_s']:>9,.0f}{r['peak_mb']:>9,.0f}"
                   f"{r['step_s'] / ntp['step_s']:>9.2f}x{flop_bound(name, m):>7.2f}x"
                   f"{total[m] / total['ntp']:>8.2f}x{r['peak_mb'] / ntp['peak_mb']:>8.2f}x"
                   f"{vs_naive:>12.2f}x{total.get('naive', float('nan')) / total[m]:>7.2f}x")
    out.append("bound: the student's FLOP lower bound of time/NTP (doubled stream after "
               "insert_layer, C-wide predictor, compressor as computed); +labels: with the "
               "teacher's forward, its backward and the SAE; the last column: naive / this "
               "config in FLOPs, the most a FLOP-bound device can gain over the naive setup.")
    return out


def check_targets(rows: list[dict]) -> list[str]:
    """PASS/FAIL per target, each with the FLOP bound of its ratio where one exists."""
    by = {r["mode"]: r for r in rows}
    ntp, c, o, n = by["ntp"], by["cached"], by["on-the-fly"], by["naive"]
    name = rows[0]["shape"]
    total = {m: step_flops(name, m)[1] for m in by}
    checks = [
        ("cached step time / NTP", c["step_s"] / ntp["step_s"], "<=", "cached_time",
         flop_bound(name, "cached")),
        ("cached peak mem / NTP", c["peak_mb"] / ntp["peak_mb"], "<=", "cached_mem", None),
        ("on-the-fly peak mem / NTP", o["peak_mb"] / ntp["peak_mb"], "<=", "otf_mem", None),
        ("on-the-fly tok/s / naive", o["tok_s"] / n["tok_s"], ">=", "otf_vs_naive",
         total["naive"] / total["on-the-fly"]),
        ("cached tok/s / naive", c["tok_s"] / n["tok_s"], ">=", "cached_vs_naive",
         total["naive"] / total["cached"])]
    out = []
    for label, value, op, key, bound in checks:
        target = TARGETS[key]
        ok = value <= target if op == "<=" else value >= target
        note = f"; FLOP bound {bound:.2f}x" if bound is not None else ""
        out.append(f"  {'PASS' if ok else 'FAIL'}  {label}: {value:.2f}x "
                   f"(target {op} {target}x{note})")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", nargs=2, metavar=("SHAPE", "MODE"), help=argparse.SUPPRESS)
    p.add_argument("--shapes", nargs="+", default=["tiny", "69m"], choices=["tiny", "69m"])
    p.add_argument("--steps", type=int, default=3, help="measured steps per configuration")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured steps first")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per configuration (CPU); with 1 the step time is its "
                        "CPU time, robust to other processes; 0 keeps torch's default")
    p.add_argument("--quick", action="store_true", help="tiny shape only, 2 steps")
    p.add_argument("--json", help="also write the measurements to this file")
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.steps, args.warmup, args.threads)))
        return
    shapes, steps = (["tiny"], 2) if args.quick else (args.shapes, args.steps)
    results = []
    for name in shapes:
        rows = [measure(name, mode, steps, args.warmup, args.threads) for mode in MODES]
        results += rows
        sh = shape(name)
        print(f"\n== {name}: student {sh['student']}, T={sh['seq_len']}, batch {sh['batch']}, "
              f"C={sh['d_sae']:,}, teacher {sh['teacher']} + SAE at {sh['hook']} "
              f"({rows[0]['device']}, {rows[0]['threads']} thread(s), median of {steps} steps"
              f"{', CPU time' if rows[0]['step_s'] == rows[0]['cpu_s'] else ''})")
        print("\n".join(table(rows)))
        print("targets (they bind at the 69M shape):" if name == "69m"
              else "the 69M targets, applied to this shape for reference:")
        print("\n".join(check_targets(rows)))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
