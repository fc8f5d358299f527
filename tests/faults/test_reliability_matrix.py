"""The reliability matrix (tests/faults/reliability_matrix.py) in `make test`: every numeric
flag and setting, every file reader under every fault, and the reliability issues' scenarios end
`correct` or as a one-line `clear error`; every writer refuses a full disk and a read-only
target, and (marked `faults`, minutes) ends killed at random times as if never killed.
`make faults` writes the table (docs/reliability_matrix.md) and adds the SIGKILL loops."""

from __future__ import annotations

import os

import pytest
from reliability_matrix import (
    GOOD,
    bound_rows,
    file_rows,
    kill_rows,
    kind,
    run_rows,
    scenario_rows,
    writer_rows,
)


def _bad(rows) -> list[str]:
    return [f"{r.area} | {r.case} | {r.verdict}" for r in rows if kind(r.verdict) not in GOOD]


def test_every_number_is_bounded_everywhere(tmp_path):
    rows = run_rows(bound_rows(), tmp_path)
    assert len(rows) >= 100 and not _bad(rows), "\n".join(_bad(rows))


def test_every_file_reader_names_the_file_under_every_fault(world, tmp_path):
    rows = run_rows(file_rows(world), tmp_path)
    assert len(rows) >= 50 and not _bad(rows), "\n".join(_bad(rows))


def test_every_scenario_of_the_reliability_issue_is_correct_or_a_clear_error(world, tmp_path):
    rows = run_rows(scenario_rows(world), tmp_path)
    assert len(rows) >= 30 and not _bad(rows), "\n".join(_bad(rows))


def test_every_writer_refuses_a_full_disk_and_a_read_only_target_in_one_line(world, tmp_path):
    rows = run_rows(writer_rows(world), tmp_path)
    assert len(rows) == 16 and not _bad(rows), "\n".join(_bad(rows))


@pytest.mark.faults
def test_every_writer_of_a_run_killed_at_random_times_ends_as_if_never_killed(world, tmp_path):
    rows = run_rows(kill_rows(world), tmp_path)
    assert len(rows) == 5 and not _bad(rows), "\n".join(_bad(rows))


@pytest.mark.parametrize("script", ["kill_loops", "reliability_matrix"])
def test_make_faults_scripts_import_the_repositorys_packages(script):
    """`make faults` runs these files as scripts, where sys.path starts at tests/faults and
    tests/ (whose test folders are named like the packages): after their own sys.path set-up
    `training` must be the repository's package, not tests/training as a namespace package
    (the kill loops import training.corpus only once they build their inputs)."""
    import subprocess
    import sys
    from pathlib import Path

    faults = Path(__file__).resolve().parent
    code = (f"import {script}, training.corpus, training.cli; "
            "print(training.corpus.__file__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=faults, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    assert Path(done.stdout.strip()) == faults.parents[1] / "training" / "corpus" / "__init__.py"
