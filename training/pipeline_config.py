"""Configuration of the offline pipeline (prepare -> teacher -> SAE -> labels -> students).

Nested dataclasses with a docstring per field, named presets, and dotted overrides
(`--teacher.max_steps 50`) typed by `training.overrides`, the engine `train` uses too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cocomix_lens.bounds import SEED_MAX, bounded
from cocomix_lens.config import CoCoMixConfig
from training import overrides as overrides_engine
from training.overrides import schema_field


@dataclass
class DataStage:
    """The corpus and its tokenizer (`cocomix-lens prepare`)."""

    corpus: str = "wiki"
    """Corpus source: wiki (offline default), text (local files), hf or world (synthetic)."""
    path: str | None = None
    """text: a .txt/.jsonl file or a directory of them."""
    separator: str | None = None
    """text: split each .txt file into documents on this string, escapes decoded ("\\n\\n":
    paragraphs); None: one document per .txt file."""
    max_docs: int | None = bounded(5000, 1, 10**9, integer=True)
    """Use only the first N documents (the label cache covers every train token)."""
    vocab_size: int = bounded(4096, 257, 1 << 20)
    """BPE vocabulary size (trained on the corpus)."""
    val_fraction: float = bounded(0.05, 0, 0.99)
    """Fraction of documents in the validation split."""


@dataclass
class TeacherStage:
    """The concept teacher: a plain GPT-2 (mix_mode none) wider than the student."""

    preset: str = "tiny"
    """CoCoMixConfig preset the shape starts from."""
    d_model: int = bounded(192, 1, 65536)
    """Residual width (the student's tiny preset has 128)."""
    n_layers: int = bounded(4, 1, 1024)
    """Blocks."""
    n_heads: int = bounded(6, 1, 1024)
    """Attention heads."""
    max_steps: int = bounded(600, 1, 10**9)
    """Optimizer steps (objective ntp, the shared trainer)."""
    lr: float = bounded(2e-3, 0, 10, lo_open=True)
    """Peak learning rate."""


@dataclass
class SAESection:
    """The teacher's SAE (TopK, trained with SAE-Lens over cached activations)."""

    hook: str | None = None
    """Teacher hook the SAE reads; None = blocks.{n_layers // 2 - 1}.hook_resid_post (the
    paper's GPT-2 SAE reads the 6th of 12 blocks' output)."""
    d_sae: int = bounded(2048, 1, 1 << 20)
    """Number of latents (= the student's n_concepts)."""
    k: int = bounded(16, 1, 4096)
    """Active latents per token (TopK; the paper's 32 of 768 dims is sparser than 32 of our
    192, so the tiny teacher gets 16); jumprelu: the L0 target. The groundtruth stage counts a
    token's k most active latents."""
    train_tokens: int = bounded(65_536, 1, 10**9)
    """Activation vectors collected from the train split."""
    eval_tokens: int = bounded(16_384, 1, 10**9)
    """Activation vectors collected from the validation split for the quality metrics."""
    epochs: float = bounded(3.0, 0, 1000, lo_open=True)
    """Passes over the collected train activations."""
    batch_size: int = bounded(512, 1, 1 << 20)
    """Activation vectors per SAE step."""
    lr: float = bounded(2e-3, 0, 10, lo_open=True)
    """Adam learning rate (warmup, then cosine to lr / 10)."""
    normalize: str = "expected_average_only_in"
    """SAE-Lens normalize_activations; the scale is folded into the weights at the end."""
    architecture: str = "topk"
    """SAE-Lens training architecture: topk (k per token), batchtopk (k per token on average
    over a batch; saved as JumpReLU), matryoshka_batchtopk, jumprelu (a threshold per latent,
    L0 penalised toward k per token), standard (ReLU + L1) or gated (training.sae.ARCHITECTURES)."""
    matryoshka_first: int = bounded(16, 1, 1 << 20)
    """matryoshka_batchtopk: width of the first nested prefix; the prefixes grow 4x up to
    d_sae (16 -> 16, 64, 256, 512) and each reconstructs alone, so coarse features (a topic)
    go to the first latents and are not split into many narrow ones."""
    aux_loss: float = bounded(1.0, 0, 1000)
    """Weight of SAE-Lens's dead-latent auxiliary loss (AuxK: dead latents reconstruct the
    residual error)."""
    sparsity: float = bounded(1.0, 0, 1e6)
    """jumprelu: weight of the L0 penalty (quadratic around k per token); standard, gated:
    weight of the L1 penalty."""
    pre_act_loss: float = bounded(0.0, 0, 1e6)
    """jumprelu: weight of Anthropic's pre-activation loss on dead latents (0 = off)."""
    threshold_init: float = bounded(0.01, 0, 1e6)
    """jumprelu: every latent's initial threshold (on the normalized activations)."""
    seed: int = bounded(0, 0, SEED_MAX)
    """Seeds init, window choice and shuffling."""


@dataclass
class LabelsStage:
    """The label cache (`cocomix-lens labels`)."""

    k: int = bounded(4, 1, 1024)
    """Labels per token (paper: 4)."""
    method: str = "attribution"
    """Attribution method (cocomix_lens.concepts.METHODS)."""
    batch_size: int = bounded(16, 1, 1 << 16)
    """Teacher windows per call."""


@dataclass
class StudentStage:
    """The two students, trained on the same windows in the same order."""

    preset: str = "tiny"
    """CoCoMix student preset."""
    ntp_preset: str | None = "tiny-ntp"
    """NTP baseline preset (width-matched); None uses `preset` with mix_mode none."""
    overrides: dict[str, Any] = schema_field(CoCoMixConfig)
    """CoCoMixConfig fields replacing both presets' (`--student.overrides.d_model 64`)."""
    max_steps: int = bounded(400, 1, 10**9)
    """Optimizer steps of each student (same token budget)."""
    lr: float = bounded(2e-3, 0, 10, lo_open=True)
    """Peak learning rate."""
    lam: float = bounded(0.1, 0, 1000)
    """Weight of the CoCoMix student's concept loss (paper: 0.1)."""


@dataclass
class PipelineConfig:
    """The whole offline pipeline."""

    seed: int = bounded(0, 0, SEED_MAX)
    """Seeds every stage."""
    seq_len: int = bounded(128, 1, 1 << 20)
    """Training window of teacher and students, and the label-cache window L."""
    batch_size: int = bounded(16, 1, 1 << 16)
    """Windows per optimizer step (teacher and students)."""
    eval_every: int = bounded(100, 1, 10**9)
    """Validation every this many steps (and at the end)."""
    eval_batches: int = bounded(4, 1, 10**6)
    """Validation batches per evaluation."""
    device: str = "cpu"
    """Torch device of every stage."""
    threads: int | None = bounded(None, 1, 1024, integer=True)
    """CPU threads of torch for every stage (training.threads.use_threads: None = the
    machine's idle cores, or $OMP_NUM_THREADS); summary.json records the count used."""
    parallel: bool = True
    """With 2 or more threads, train the NTP student in a second process beside the teacher,
    SAE and labels stages, each side on half the threads (training/side_stage.py); the
    students draw the same windows either way."""
    progress: bool = True
    """Show progress bars."""
    data: DataStage = field(default_factory=DataStage)
    """Corpus and tokenizer."""
    teacher: TeacherStage = field(default_factory=TeacherStage)
    """Teacher model."""
    sae: SAESection = field(default_factory=SAESection)
    """Teacher SAE."""
    labels: LabelsStage = field(default_factory=LabelsStage)
    """Label cache."""
    student: StudentStage = field(default_factory=StudentStage)
    """Students."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _tiny() -> PipelineConfig:
    return PipelineConfig()


def _micro() -> PipelineConfig:
    """Seconds-sized, for tests and smoke runs: every stage runs, nothing learns much."""
    return PipelineConfig(
        parallel=False,  # seconds-long stages: a second process would cost more than it saves
        seq_len=32, batch_size=8, eval_every=10, eval_batches=2, progress=False,
        data=DataStage(max_docs=200, vocab_size=300, val_fraction=0.1),
        teacher=TeacherStage(d_model=48, n_layers=2, n_heads=2, max_steps=12, lr=3e-3),
        sae=SAESection(d_sae=64, k=4, train_tokens=4096, eval_tokens=1024, epochs=2,
                       batch_size=256),
        student=StudentStage(overrides={"d_model": 32, "n_heads": 2, "n_layers": 2,
                                        "insert_layer": 1, "n_ctx": 64, "concept_top_k": 8},
                             ntp_preset=None, max_steps=12, lr=3e-3))


def _world() -> PipelineConfig:
    """The synthetic world (the demo): its concepts are known per token, so the report can
    say how well the SAE, the labels and the student recover them. A narrower teacher than
    tiny's and a smaller, sparser SAE: the world has ~200 latent values, not Wikipedia's."""
    return PipelineConfig(
        data=DataStage(corpus="world", max_docs=15_000, vocab_size=4096, val_fraction=0.05),
        teacher=TeacherStage(d_model=128, n_layers=4, n_heads=4, max_steps=1000, lr=3e-3),
        # Block 2 of 4 (not the default 1): its latents carry more sentence context (mean
        # best sentence-level topic F1 0.69 vs 0.57). 2,048 latents (k 16) recover topics
        # barely better (0.71) but the CoCoMix student over 2,048 concepts learns much worse
        # (val loss 1.66 vs NTP 1.27; 42 % grammatical samples), so 512.
        # JumpReLU (L0 target k 4, Anthropic's pre-activation loss 0.1), not TopK: TopK's topic
        # latents also fire weakly on function words everywhere, and it has no per-latent
        # threshold to drop them, so no latent detected a topic's sentences (sentence-level
        # topic coverage 0.00, mean best F1 0.64; 20 % dead). JumpReLU learns the threshold:
        # coverage 0.86 / 0.86 / 0.93 on 3 seeds, 1.2-1.6 % dead, variance explained 0.962 vs
        # 0.968 (`python benchmarks/sae_sweep.py --run runs/demo`, 33 rows with BatchTopK,
        # Matryoshka, ReLU+L1 and gated in benchmarks/results/sae_sweep_world.jsonl; docs/world.md).
        sae=SAESection(hook="blocks.2.hook_resid_post", d_sae=512, k=4, architecture="jumprelu",
                       pre_act_loss=0.1, train_tokens=196_608, eval_tokens=16_384, epochs=4),
        # Activation labels (the paper's ablation; the library's default stays attribution):
        # with this SAE, attribution labels follow the next token, which the student cannot
        # see, and isolate no topic (labels 0.00, student 0.29, CoCoMix val loss 1.270 vs NTP
        # 1.269), while activation labels keep the SAE's topics (labels 0.86, student 0.93) and
        # train the better student (val loss 1.257, one thread as the row before; 1.265 on
        # `make demo`'s two; the TopK + attribution preset: 1.254, its student 0.36). Same
        # prepare, teacher and NTP stages, seed 0; `cocomix-lens pipeline --preset world
        # --labels.method attribution` for the other row (docs/world.md).
        labels=LabelsStage(method="activation"),
        # 1,000 teacher and student steps: what fits `make demo` in 15 min on 2 cores (the NTP
        # student beside the teacher chain, 1 thread each, then CoCoMix on both; docs/world.md).
        # Measured (REPORT.md; teacher ppl / NTP, CoCoMix val loss / grammatical samples NTP,
        # CoCoMix): 800 steps 4.00 / 1.315, 1.375 / 0.97, 0.95 and no screened concept steered;
        # 900 steps 4.01 / 1.325, 1.316 / 0.95, 0.92 and none steered; 1,000 steps 3.63 / 1.269,
        # 1.254 / 0.96, 0.95; 1,200 steps 3.69 / 1.256, 1.273 / 0.96, 0.97 (18+ min); at 400
        # steps 19 % / 38 % of sentences parsed. A concept loss weight of 1 (paper: 0.1) makes
        # the CoCoMix student predict topic latents (top-4 sentence-level topic F1 0.73 vs 0.20
        # at 1,200 steps), lowers its val loss (1.273 vs 1.390) and makes its concepts steer.
        student=StudentStage(max_steps=1000, lr=3e-3, lam=1.0))


def _small() -> PipelineConfig:
    """Your own text, up to ~5 MB (`--corpus book.txt --separator "\\n\\n"`): every
    document, the world's teacher and student shapes trained for fewer steps, an SAE of 1,024
    latents on block 2 and the concept loss weight that made the world's concepts readable
    (lambda 1). Measured on the King James Bible (4.3 MB, 1.11M train tokens; docs/training.md):
    10 min 0 s on 2 idle CPU cores with 450 teacher steps (600: 10 min 31 s), the labels stage
    (every train token) a third of it."""
    return PipelineConfig(
        data=DataStage(corpus="text", max_docs=None, vocab_size=4096, val_fraction=0.02),
        teacher=TeacherStage(d_model=128, n_layers=4, n_heads=4, max_steps=450, lr=3e-3),
        sae=SAESection(hook="blocks.2.hook_resid_post", d_sae=1024, k=8,
                       train_tokens=131_072, eval_tokens=16_384, epochs=3),
        student=StudentStage(max_steps=400, lr=3e-3, lam=1.0))


PRESETS = {"tiny": _tiny, "world": _world, "small": _small, "micro": _micro}
"""Pipeline presets: world (the demo, synthetic), small (your own text, a few MB), tiny
(Wikipedia, the real-text option) and micro (tests)."""


def pipeline_preset(name: str) -> PipelineConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown pipeline preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()


def apply_overrides(cfg: PipelineConfig, overrides: dict[str, Any]) -> PipelineConfig:
    """A copy of `cfg` with dotted keys (`teacher.max_steps`, `student.overrides.d_model`)
    set from strings, typed by the fields they set (`training.overrides`)."""
    return overrides_engine.apply_overrides(cfg, overrides, label="pipeline override")
