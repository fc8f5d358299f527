"""Fixtures every test module may use: one micro pipeline run per session on the topical test
corpus, one on the synthetic world, and a fixed seed. (The fault world is tests/faults/'s.)

Each run is built once (about a minute on two cores) instead of once per module: read it,
and copy it (helpers_training.copy_run) before changing anything in it.
"""

import os
import random

# Under pytest-xdist (`make test` runs `-n 2`) two workers share the cores: one torch thread
# each, and for the processes they start, unless a test sets its own count. Two threads per
# worker on two cores spin against each other (training/threads.py: up to ~7x slower).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402  (after the thread count: torch reads it on import)
import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global RNG state, whatever ran before it."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def micro_run(tmp_path_factory):
    """A finished `micro` pipeline run on the topical test corpus: (cfg, out, summary)."""
    from helpers_training import micro_pipeline_run

    return micro_pipeline_run(tmp_path_factory.mktemp("micro"))


@pytest.fixture(scope="session")
def micro_world_run(tmp_path_factory):
    """A finished `micro` pipeline run on 400 synthetic-world documents, whose ground truth
    the groundtruth stage scores against: (cfg, out, summary)."""
    from training.pipeline import run_pipeline
    from training.pipeline_config import apply_overrides, pipeline_preset

    cfg = apply_overrides(pipeline_preset("micro"), {"data.corpus": "world",
                                                     "data.max_docs": "400"})
    out = tmp_path_factory.mktemp("micro_world") / "run"
    return cfg, out, run_pipeline(cfg, out)
