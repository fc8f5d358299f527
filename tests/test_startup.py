"""Start-up: `cocomix-lens --help`, `--version` and argument errors import neither torch nor
TransformerLens; `import cocomix_lens` imports none of the heavy libraries until a name is
used. Asserted on what is imported (sys.modules), not on time: benchmarks/bench_startup.py
times it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformer_lens", "pandas", "streamlit", "plotly", "sae_lens")
# `import cocomix_lens` also leaves the tokenizer alone (`prepare --help` lists TOKENIZERS).
LIBRARY_HEAVY = (*HEAVY, "tokenizers")

# Each argv answers without running a command (help, version or a usage error).
ARGVS = [["--help"], ["--version"], ["nope"], ["pipeline", "--preset", "nope", "--out", "x"],
         ["pipeline", "--out"], ["train", "--out", "x", "--objective", "nope"],
         ["generate", "--run", "x"]]
COMMANDS = ["prepare", "labels", "train", "pipeline", "catalog", "concepts", "inspect",
            "generate", "steer-eval", "study", "app"]

PROBE = """
import contextlib, io, json, sys
from training.cli import main
heavy = {heavy!r}
out = []
for argv in {argvs!r}:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(argv)
        except SystemExit:
            pass
    out.append([argv, sorted(m for m in heavy if m in sys.modules)])
print(json.dumps(out))
"""


def probe(code: str) -> str:
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout.strip().splitlines()[-1]


def test_help_version_and_usage_errors_import_no_torch():
    argvs = ARGVS + [[name, "--help"] for name in COMMANDS]
    for argv, loaded in json.loads(probe(PROBE.format(heavy=HEAVY, argvs=argvs))):
        assert loaded == [], f"cocomix-lens {' '.join(argv)} imported {loaded}"


def test_probe_sees_an_import():
    """The probe can fail: a command that runs imports torch."""
    code = PROBE.replace("main(argv)", "import torch") .format(heavy=HEAVY, argvs=[["x"]])
    assert json.loads(probe(code))[0][1] == ["torch"]


@pytest.mark.parametrize("names", [[], ["Run", "CoCoMixConfig", "__version__"]])
def test_import_cocomix_lens_is_light(names):
    code = (f"import sys, cocomix_lens\nfor n in {names!r}: getattr(cocomix_lens, n)\n"
            f"print(sorted(m for m in {LIBRARY_HEAVY!r} if m in sys.modules))")
    assert probe(code) == "[]"


@pytest.mark.parametrize("package", ["cocomix_lens", "cocomix_lens.data", "cocomix_lens.concepts",
                                     "cocomix_lens.inspection", "training.corpus"])
def test_lazy_exports_resolve(package):
    """Every exported name resolves to the object (not a submodule of the same name) and
    shows in dir()."""
    import importlib
    import types

    mod = importlib.import_module(package)
    for name in mod.__all__:
        value = getattr(mod, name)
        assert not isinstance(value, types.ModuleType), f"{package}.{name} is a module"
        assert name in dir(mod)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mod.nope  # noqa: B018


def test_the_warmed_modules_exist():
    # make install saves the bytecode of these (training/warm_imports.py); a module that moved
    # would fail the install, and the start-up benchmark's "every command's modules" row.
    import importlib.util

    from training.warm_imports import APP_MODULES, MODULES

    missing = [m for m in (*MODULES, *APP_MODULES) if importlib.util.find_spec(m) is None]
    assert missing == []
