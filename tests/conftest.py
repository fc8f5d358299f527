"""Fixtures every test module may use: one micro pipeline run per session, and a fixed seed.

`micro_run` is built once (about a minute on two cores) instead of once per module: read it,
and copy it (tests/test_rundir.py's `copy_run`) before changing anything in it.
"""

import random

import numpy as np
import pytest
import torch


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
