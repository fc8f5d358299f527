"""A root of runs for the app's tests: a micro pipeline run (with its concept catalogue when
the library has one) plus broken copies for the error cases; and AppTest helpers."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from helpers_training import copy_run, micro_config, write_corpus

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app" / "main.py"


STUDY_WORLD = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "study_world"


def build_root(tmp: Path, micro: Path | None = None) -> Path:
    """root/run (complete, with the committed world study's study.json and figures copied
    in as its study), root/no_student (its CoCoMix model removed; no study),
    root/bad_catalogue (catalogue tables overwritten with garbage; no study).

    root/run is a copy of `micro`, a finished micro pipeline run (tests pass the session's,
    tests/conftest.py), or a micro run built here when none is given (the reliability
    matrix's script)."""
    from training.pipeline import run_pipeline

    root = tmp / "runs"
    run = root / "run"
    if micro is None:
        run_pipeline(micro_config(write_corpus(tmp / "corpus")), run)
    else:
        copy_run(micro, root, checkpoints=True)
    build_catalogue(run)
    shutil.copytree(run, root / "no_student")
    shutil.rmtree(root / "no_student" / "cocomix" / "model")
    shutil.copytree(run, root / "bad_catalogue")
    cat = root / "bad_catalogue" / "catalogue"
    cat.mkdir(exist_ok=True)
    for name in ("concepts", "contexts", "metadata"):
        (cat / f"{name}.parquet").write_bytes(b"not parquet")
    add_study(run)
    return root


def add_study(run_dir: Path) -> None:
    """The committed world study (study.json, study.md, figures/) as the run's study: the
    app only reads study.json, so a real study's numbers stand in for a trained one."""
    from cocomix_lens.rundir import LAYOUT

    shutil.copytree(STUDY_WORLD, run_dir / LAYOUT.pipeline.study)


def build_catalogue(run_dir: Path) -> None:
    """The run's concept catalogue, unless the pipeline already made it."""
    from cocomix_lens import Run
    from cocomix_lens.catalogue.run import build_for_run

    run = Run.open(run_dir)
    if not run.has("catalogue"):
        build_for_run(run)


@contextmanager
def app_env(root: Path, run: str = "run"):
    """The environment `cocomix-lens app --root ROOT --run ROOT/RUN` gives the app."""
    keys = {"COCOMIX_LENS_APP_ROOT": str(root), "COCOMIX_LENS_APP_RUN": run,
            "COCOMIX_LENS_APP_DEVICE": "cpu"}
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def open_app(**query):
    """An AppTest of the app with these URL query parameters, run once."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=180)
    for k, v in query.items():
        at.query_params[k] = str(v)
    return at.run()


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def assert_clean(at) -> None:
    """No st.error, no exception element, no traceback text."""
    assert not at.exception, [e.value for e in at.exception]
    assert not errors(at), errors(at)


def find_steerable(run_dir: Path, prompt: str = "The") -> tuple[int, float]:
    """(concept, strength) whose scale edit changes the text the student samples after
    `prompt` with the Steer page's default settings. A micro model barely listens to its
    concepts, so look for one, the concept it predicts most strongly first."""
    import torch

    from app.steer_logic import Sampling, generate_ids, make_spec
    from cocomix_lens import Run
    from cocomix_lens.data.tokenizer import prompt_ids

    model = Run.open(run_dir).student
    ids = torch.tensor([prompt_ids(model.tokenizer, prompt)])
    _, z = model(ids, return_concept_logits=True)
    text = lambda edit=None: model.tokenizer.decode(generate_ids(model, ids, Sampling(), edit))
    default = text()
    for c in z[0, -1].argsort(descending=True).tolist():
        for strength in (10.0, -10.0):
            if text(make_spec("scale", c, strength)) != default:
                return c, strength
    raise AssertionError("no concept changes the micro student's text")


def library_text(model, spec, prompt: str = "The") -> str:
    """The text the library's `generate(..., steering=spec)` adds to `prompt` with the Steer
    page's default sampling (app.steer_logic.Sampling()), cut before <|endoftext|>."""
    import torch

    from app.steer_logic import Sampling
    from cocomix_lens.data.tokenizer import eos_id, prompt_ids

    s = Sampling()
    ids = torch.tensor([prompt_ids(model.tokenizer, prompt)])
    out = model.generate(ids, max_new_tokens=s.max_new_tokens, temperature=s.temperature,
                         top_p=s.top_p, top_k=s.top_k, seed=s.seed, steering=spec)
    new = out[0, ids.shape[1]:].tolist()
    eos = eos_id(model.tokenizer)
    return model.tokenizer.decode(new[:new.index(eos)] if eos in new else new)


def find_second_edit(run_dir: Path, first, prompt: str = "The"):
    """A ban (else force) edit that changes the library's text under `first` when added to
    it, so a page that applied only the first edit would show another text."""
    import torch

    from cocomix_lens import Run
    from cocomix_lens.data.tokenizer import prompt_ids
    from cocomix_lens.steering import Edit, SteeringSpec

    model = Run.open(run_dir).student
    ids = torch.tensor([prompt_ids(model.tokenizer, prompt)])
    _, z = model(ids, return_concept_logits=True)
    alone = library_text(model, SteeringSpec((first,)), prompt)
    for op in ("ban", "force"):
        for c in z[0, -1].argsort(descending=(op == "ban")).tolist()[:64]:
            if c != first.concept:
                second = Edit(op, c)
                if library_text(model, SteeringSpec((first, second)), prompt) != alone:
                    return second
    raise AssertionError("no ban or force edit changes the micro student's steered text")


MEASURED_STRENGTH = 3.5  # an add strength no op default has, so a prefill shows its source


def measured_doc(concept: int, strength: float, rank: int = 1,
                 screen: list[dict] | None = None) -> dict:
    """A `steer-eval --densest` result (the screen's JSON) whose chosen CoCoMix edit is add
    `strength` std to `concept`, its steered success figures clear of both controls. The app
    reads only the screen, the chosen strength and the final table from it."""
    import numpy as np

    from cocomix_lens.steering.results import ArmResult, MetricInfo, SteeringEvaluation
    from training.steering_screen import DenseSteering

    metrics = ("sae_act", "student_prob")
    vals = {c: {m: list(v + np.linspace(-0.01, 0.01, 8)) for m in metrics}
            for c, v in (("steered", 0.3), ("unsteered", 0.1), ("control", 0.1))}
    arm = ArmResult("cocomix", f"add concept {concept} by {strength:g} std", concept,
                    concept + 1, strength, [MetricInfo(m, "success", "") for m in metrics],
                    vals, n_boot=100)
    return DenseSteering(live=10, median_density=0.05, settings={"samples": 8, "strength": 6.0},
                         screen=screen or [{"concept": concept, "clear": True}],
                         concept=concept, density=0.3, rank=rank,
                         chosen={"cocomix_add": strength, "sae": 0.3},
                         final=SteeringEvaluation({"cocomix": arm}, {})).to_dict()


def add_measured_steering(run_dir: Path) -> int:
    """`measured_doc` for the run's densest live concept at MEASURED_STRENGTH, written where
    the app reads it (RUN/steering/steering.json); returns that concept."""
    from cocomix_lens import Run
    from cocomix_lens.data.files import atomic_write_json
    from cocomix_lens.rundir import LAYOUT
    from training.steering_screen import densest_concepts

    concept = densest_concepts(Run.open(run_dir), 1)[0][0]
    path = run_dir / LAYOUT.pipeline.steering_json
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, measured_doc(concept, MEASURED_STRENGTH))
    return concept


_EDIT = '{"op": "scale", "concept": 0, "value": 2.0'
# (name, uploaded bytes, what the one warning says): tests/app/test_app.py uploads each,
# tests/faults/reliability_matrix.py gives each a verdict
APP_SPECS = [
    ("not JSON", b"{not json", "is not valid JSON"),
    ("not UTF-8", b"\xff\xfe{}", "is not UTF-8"),
    ("a JSON array", b"[1, 2]", "is not a JSON object"),
    ("edits not a list", b'{"edits": 3}', 'needs an "edits" list'),
    ("int positions", ('{"edits": [%s, "positions": 3}]}' % _EDIT).encode(),
     "positions=3 must be"),
    ("concept id 9999", b'{"edits": [{"op": "scale", "concept": 9999, "value": 2}]}',
     "out of range"),
    ("a string value", b'{"edits": [{"op": "scale", "concept": 0, "value": "big"}]}',
     "must be a number"),
    ("300 edits", ('{"edits": [%s]}' % ", ".join([_EDIT + "}"] * 300)).encode(),
     "more than MAX_EDITS"),
    ("1 MiB + 2 bytes", b" " * (1 << 20) + b"{}", "more than MAX_SPEC_BYTES"),
]
